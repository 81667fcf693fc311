/**
 * An interrupted copy (the process killed with SIGKILL mid-blob) leaves a valid destination,
 * and a rerun completes it: blobs become visible only when verified, the tag only at the end;
 * an archive destination is replaced atomically, so the old archive survives the kill intact.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, promises as fsp } from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, test } from 'node:test'
import { Layout } from '../../src/store/layout.js'
import type { Descriptor } from '../../src/spec/types.js'
import { cliPath, ladingOk, runOk, signalWhenFileAppears } from '../helpers/cli.js'
import { findTool } from '../helpers/tools.js'
import { seeImage } from './inspect.js'
import { tempDir } from '../fixtures/temp.js'
import { initImage } from '../fixtures/image.js'

const tmp = tempDir({ after }, { prefix: 'lading-interrupt-' })
let big: Descriptor
let bigManifest: Descriptor

before(async () => {
  // One big uncompressed layer (48 MiB) so the copy is surely mid-blob when killed.
  const img = await initImage(
    path.join(tmp, 'src'),
    { uncompressed: true, layers: [{ 'a.txt': 'small layer' }, { 'big.bin': randomBytes(48 * 1024 * 1024), 'small.txt': 'x' }] },
    't',
  )
  big = img.layers[1]!
  bigManifest = img.manifest
})

/**
 * Run `lading copy --progress=json` and kill it (SIGKILL by default) once the big layer is partly
 * copied. `messages` are the lines on stderr that are not progress events.
 */
async function killMidBlob(
  args: string[],
  signal: NodeJS.Signals = 'SIGKILL',
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ killedAt: number; code: number | null; messages: string[] }> {
  const child = spawn(process.execPath, [cliPath, 'copy', '--progress=json', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let killedAt = -1
  const messages: string[] = []
  for await (const line of createInterface({ input: child.stderr! })) {
    if (!line.startsWith('{')) {
      messages.push(line)
      continue
    }
    const e = JSON.parse(line) as { type: string; digest?: string; bytes?: number; size?: number }
    if (killedAt < 0 && e.type === 'blob-progress' && e.digest === big.digest && e.bytes! < e.size!) {
      killedAt = e.bytes!
      child.kill(signal)
    }
  }
  const code = await exited
  if (signal === 'SIGKILL') assert.equal(code, null, 'the copy was killed, it did not finish first')
  assert.ok(killedAt > 0 && killedAt < big.size)
  return { killedAt, code, messages }
}

/** `lading copy -q ARGS`, sent `signal` the moment a file named `prefix…` appears in `dir` (mid-write). */
async function killWhenAppears(
  args: string[],
  dir: string,
  prefix: string,
  signal: NodeJS.Signals,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stderr: string }> {
  const { code, stderr, sent } = await signalWhenFileAppears(['copy', '-q', ...args], dir, (name) => name.startsWith(prefix), signal, env)
  assert.ok(sent, `no ${prefix}… appeared in ${dir} (stderr: ${stderr})`)
  if (signal === 'SIGKILL') assert.equal(code, null, 'the copy was killed, it did not finish first')
  return { code, stderr }
}

test('interrupted copy into an OCI layout leaves it valid; a rerun completes it', async () => {
  const dst = path.join(tmp, 'dst')
  // --preserve-digests: the uncompressed big layer moves as it is (an oci: destination would
  // otherwise gzip it, as skopeo does), so the rerun's manifest is the source's.
  await killMidBlob(['--preserve-digests', `oci:${path.join(tmp, 'src')}:t`, `oci:${dst}:t`])
  const layout = await Layout.open(dst)
  assert.deepEqual((await layout.readIndex()).manifests, [], 'the tag is not set by a copy that did not finish')
  assert.equal(await layout.hasBlob(big.digest), false, 'the half-copied layer is not visible')
  // Every visible blob is complete and verifies.
  for await (const b of layout.listBlobs()) await layout.readBlob({ digest: b.digest, size: b.size }, 64 * 1024 * 1024)
  const rerun = ladingOk(['copy', '--progress=json', '--preserve-digests', `oci:${path.join(tmp, 'src')}:t`, `oci:${dst}:t`])
  const events = rerun.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string })
  assert.ok(
    events.some((e) => e.type === 'blob-start'),
    'the rerun copies what is missing',
  )
  assert.equal((await layout.resolveTag('t')).digest, bigManifest.digest)
  assert.equal((await seeImage(`oci:${dst}:t`)).manifestDigest, bigManifest.digest)
  if (findTool('skopeo')) runOk('skopeo', ['inspect', `oci:${dst}:t`])
})

test('interrupted copy into a dir: image leaves no partial blob; a rerun completes it', async () => {
  const dst = path.join(tmp, 'dir-dst')
  await killMidBlob([`oci:${path.join(tmp, 'src')}:t`, `dir:${dst}`])
  const names = await fsp.readdir(dst)
  assert.ok(!names.includes('manifest.json'), 'no manifest until every blob is there')
  assert.ok(!names.includes(big.digest.slice('sha256:'.length)), 'the half-copied layer is not visible under its name')
  ladingOk(['copy', '-q', `oci:${path.join(tmp, 'src')}:t`, `dir:${dst}`])
  assert.equal((await seeImage(`dir:${dst}`)).manifestDigest, bigManifest.digest)
})

test('interrupted copy into an existing (empty) docker-archive leaves it as it was', async () => {
  // A file with content is refused before anything is written (test/copy/destination-lifecycle.test.ts);
  // an empty one, which skopeo writes into too, stays empty until the archive is complete.
  const tar = path.join(tmp, 'out.tar')
  await fsp.writeFile(tar, '')
  await killMidBlob([`oci:${path.join(tmp, 'src')}:t`, `docker-archive:${tar}:example/new:t`])
  assert.equal((await fsp.stat(tar)).size, 0, 'the file is as it was')
  ladingOk(['copy', '-q', `oci:${path.join(tmp, 'src')}:t`, `docker-archive:${tar}:example/new:t`])
  const seen = await seeImage(`docker-archive:${tar}:example/new:t`)
  assert.equal(seen.layers[1]!.digest, big.digest)
})

test('SIGINT during a copy to docker-archive exits 130 and removes the spool', async () => {
  const tmpdir = path.join(tmp, 'private-tmp')
  await fsp.mkdir(tmpdir)
  const tar = path.join(tmp, 'sigint.tar')
  const { code, stderr } = await killWhenAppears([`oci:${path.join(tmp, 'src')}:t`, `docker-archive:${tar}:example/x:t`], tmp, '.sigint.tar.tmp-', 'SIGINT', {
    ...process.env,
    TMPDIR: tmpdir,
  })
  assert.equal(code, 130)
  assert.equal(stderr, 'lading: interrupted by SIGINT: removed 2 temporary files\n', 'the temp archive beside FILE and the spool')
  assert.deepEqual(await fsp.readdir(tmpdir), [], 'the spool directory is gone')
  await assert.rejects(fsp.stat(tar), 'no archive was written')
  assert.deepEqual(
    (await fsp.readdir(tmp)).filter((n) => n.startsWith('.sigint.tar')),
    [],
    'no temp archive left beside the target',
  )
})

/** Temp names a writer makes (src/io/fs.ts tempPathFor) and spool directories (src/io/cleanup.ts makeTempDir) in `dir`. */
async function leftovers(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.includes('.tmp-') || n.startsWith('lading-'))
}

/** Make leftovers look abandoned long ago (the next run removes a dead writer's files only after a while). */
async function age(paths: string[]): Promise<void> {
  const old = new Date(Date.now() - 60 * 60 * 1000)
  for (const p of paths) await fsp.utimes(p, old, old)
}

test('SIGTERM mid-copy to oci-archive: nothing left beside FILE or in TMPDIR, one line, exit 143', async () => {
  const dir = path.join(tmp, 'sigterm-oci-archive')
  const tmpdir = path.join(dir, 'tmp')
  await fsp.mkdir(tmpdir, { recursive: true })
  const tar = path.join(dir, 'out.tar')
  const { code, messages } = await killMidBlob([`oci:${path.join(tmp, 'src')}:t`, `oci-archive:${tar}:t`], 'SIGTERM', { ...process.env, TMPDIR: tmpdir })
  assert.equal(code, 143)
  assert.equal(messages.length, 1, messages.join('\n'))
  assert.match(messages[0]!, /^lading: interrupted by SIGTERM: removed [1-9]\d* temporary files?$/)
  assert.deepEqual(await fsp.readdir(tmpdir), [], 'the private layout in TMPDIR is gone')
  assert.deepEqual(await fsp.readdir(dir), ['tmp'], 'no archive and no temp archive beside it')
})

test('SIGINT while the oci-archive itself is being written removes its temp file beside FILE', async (t) => {
  const dir = path.join(tmp, 'sigint-oci-archive-commit')
  const tmpdir = path.join(dir, 'tmp')
  await fsp.mkdir(tmpdir, { recursive: true })
  const tar = path.join(dir, 'out.tar')
  // The temp archive appears beside FILE only once every blob is in the private layout.
  const { code, stderr } = await killWhenAppears([`oci:${path.join(tmp, 'src')}:t`, `oci-archive:${tar}:t`], dir, '.out.tar.tmp-', 'SIGINT', {
    ...process.env,
    TMPDIR: tmpdir,
  })
  assert.equal(code, 130, `interrupted while writing the archive (stderr: ${stderr})`)
  assert.deepEqual(await fsp.readdir(tmpdir), [])
  if (existsSync(tar)) {
    // The signal was handled after the rename that commits the archive (a loaded machine can
    // delay the watcher that sends it): then the archive is whole, never half-written.
    t.diagnostic('the signal came after the commit: checking the archive is complete')
    assert.deepEqual((await fsp.readdir(dir)).sort(), ['out.tar', 'tmp'], 'no temp archive beside it')
    // seeImage streams and verifies every layer; the uncompressed source layer's digest is its diff_id.
    assert.equal((await seeImage(`oci-archive:${tar}:t`)).diffIds[1], big.digest)
    return
  }
  assert.match(stderr, /^lading: interrupted by SIGINT: removed [1-9]\d* temporary files?\n$/)
  assert.deepEqual(await fsp.readdir(dir), ['tmp'], 'no archive and no temp archive beside it')
})

test('a SIGKILLed copy to docker-archive: its temp archive and spool are removed by the next copy to that archive', async () => {
  const dir = path.join(tmp, 'sigkill-docker-archive')
  const tmpdir = path.join(dir, 'tmp')
  await fsp.mkdir(tmpdir, { recursive: true })
  const tar = path.join(dir, 'out.tar')
  const env = { ...process.env, TMPDIR: tmpdir }
  await killWhenAppears([`oci:${path.join(tmp, 'src')}:t`, `docker-archive:${tar}:example/x:t`], dir, '.out.tar.tmp-', 'SIGKILL', env)
  const beside = (await leftovers(dir)).map((n) => path.join(dir, n))
  const spools = (await leftovers(tmpdir)).map((n) => path.join(tmpdir, n))
  assert.equal(beside.length, 1, 'the killed copy left its temp archive beside FILE')
  assert.equal(spools.length, 1, 'and its spool directory in TMPDIR')
  // A dead writer's leftovers younger than a few minutes are left alone (another pid namespace
  // may share the directory); these are made to look older.
  ladingOk(['copy', '-q', `oci:${path.join(tmp, 'src')}:t`, `docker-archive:${path.join(dir, 'other.tar')}:example/x:t`], { env })
  assert.equal((await leftovers(dir)).length, 1, "another archive's copy leaves them alone")
  await age([...beside, ...spools])
  ladingOk(['copy', '-q', `oci:${path.join(tmp, 'src')}:t`, `docker-archive:${tar}:example/x:t`], { env })
  assert.deepEqual(await leftovers(dir), [])
  assert.deepEqual(await fsp.readdir(tmpdir), [])
  assert.equal((await seeImage(`docker-archive:${tar}:example/x:t`)).layers[1]!.digest, big.digest)
})

test('a SIGKILLed copy into a layout: its temp files are removed by the next write to the layout', async () => {
  const dst = path.join(tmp, 'sigkill-layout')
  await Layout.init(dst)
  const blobs = path.join(dst, 'blobs', 'sha256')
  // --preserve-digests: the big layer moves as it is (not gzipped on the way), so its temp file carries its digest.
  await killWhenAppears(
    ['--preserve-digests', `oci:${path.join(tmp, 'src')}:t`, `oci:${dst}:t`],
    blobs,
    `.${big.digest.slice('sha256:'.length)}.tmp-`,
    'SIGKILL',
  )
  const temps = (await leftovers(blobs)).map((n) => path.join(blobs, n))
  assert.ok(temps.length >= 1, 'the killed copy left a partial blob')
  await age(temps)
  ladingOk(['copy', '-q', '--preserve-digests', `oci:${path.join(tmp, 'src')}:t`, `oci:${dst}:t`])
  assert.deepEqual(await leftovers(blobs), [])
  assert.equal((await Layout.open(dst).then((l) => l.resolveTag('t'))).digest, bigManifest.digest)
})

test('SIGINT mid-copy into a new oci: directory removes the directory, says so, exits 130', async () => {
  const parent = path.join(tmp, 'sigint-new-layout')
  const { code, messages } = await killMidBlob([`oci:${path.join(tmp, 'src')}:t`, `oci:${path.join(parent, 'layout')}:t`], 'SIGINT')
  assert.equal(code, 130)
  assert.equal(messages.length, 1, messages.join('\n'))
  assert.match(messages[0]!, /^lading: interrupted by SIGINT: removed [1-9]\d* temporary files?$/)
  await assert.rejects(fsp.lstat(parent), { code: 'ENOENT' }, 'the directories the copy made are gone')
})
