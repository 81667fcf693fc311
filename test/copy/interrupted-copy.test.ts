/**
 * An interrupted copy (the process killed with SIGKILL mid-blob) leaves a valid destination,
 * and a rerun completes it: blobs become visible only when verified, the tag only at the end;
 * an archive destination is replaced atomically, so the old archive survives the kill intact.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, test } from 'node:test'
import { digestOf } from '../../src/digest/digest.js'
import { Layout } from '../../src/store/layout.js'
import { MediaType } from '../../src/spec/media-types.js'
import type { Descriptor } from '../../src/spec/types.js'
import { cliPath, ladingOk, runOk } from '../helpers/cli.js'
import { findTool } from '../helpers/tools.js'
import { makeTar } from '../helpers/raw-layout.js'
import { buildTaggedImage } from './image-builder.js'
import { seeImage } from './inspect.js'

let tmp: string
let big: Descriptor
let bigManifest: Descriptor

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'lading-interrupt-'))
  // One big uncompressed layer (48 MiB) so the copy is surely mid-blob when killed.
  const layout = await Layout.init(path.join(tmp, 'src'))
  const tar = makeTar({ 'big.bin': randomBytes(48 * 1024 * 1024), 'small.txt': 'x' })
  const small = makeTar({ 'a.txt': 'small layer' })
  const l1 = await layout.putBlob(small)
  const l2 = await layout.putBlob(tar)
  big = { mediaType: MediaType.OciLayer, ...l2 }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(small), digestOf(tar)] } }))
  const c = await layout.putBlob(config)
  const manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, ...c }, layers: [{ mediaType: MediaType.OciLayer, ...l1 }, big] }
  bigManifest = await layout.putManifest(Buffer.from(JSON.stringify(manifest)), MediaType.OciManifest)
  await layout.setTag('t', bigManifest)
})
after(async () => { await fsp.rm(tmp, { recursive: true, force: true }) })

/** Run `lading copy --progress=json` and kill it (SIGKILL by default) once the big layer is partly copied. */
async function killMidBlob(args: string[], signal: NodeJS.Signals = 'SIGKILL', env: NodeJS.ProcessEnv = process.env): Promise<{ killedAt: number; code: number | null }> {
  const child = spawn(process.execPath, [cliPath, 'copy', '--progress=json', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let killedAt = -1
  for await (const line of createInterface({ input: child.stderr! })) {
    if (!line.startsWith('{')) continue
    const e = JSON.parse(line) as { type: string; digest?: string; bytes?: number; size?: number }
    if (e.type === 'blob-progress' && e.digest === big.digest && e.bytes! < e.size!) {
      killedAt = e.bytes!
      child.kill(signal)
      break
    }
  }
  const code = await exited
  if (signal === 'SIGKILL') assert.equal(code, null, 'the copy was killed, it did not finish first')
  assert.ok(killedAt > 0 && killedAt < big.size)
  return { killedAt, code }
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
  const events = rerun.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string })
  assert.ok(events.some((e) => e.type === 'blob-start'), 'the rerun copies what is missing')
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

test('interrupted copy over an existing docker-archive keeps the old archive intact', async () => {
  const small = path.join(tmp, 'small')
  await buildTaggedImage(small, 't')
  const tar = path.join(tmp, 'out.tar')
  ladingOk(['copy', '-q', `oci:${small}:t`, `docker-archive:${tar}:example/old:t`])
  const before = createHash('sha256').update(await fsp.readFile(tar)).digest('hex')
  await killMidBlob([`oci:${path.join(tmp, 'src')}:t`, `docker-archive:${tar}:example/new:t`])
  const afterKill = createHash('sha256').update(await fsp.readFile(tar)).digest('hex')
  assert.equal(afterKill, before, 'the archive is the old one, byte for byte')
  ladingOk(['copy', '-q', `oci:${path.join(tmp, 'src')}:t`, `docker-archive:${tar}:example/new:t`])
  const seen = await seeImage(`docker-archive:${tar}:example/new:t`)
  assert.equal(seen.layers[1]!.digest, big.digest)
})

test('SIGINT during a copy to docker-archive exits 130 and removes the spool', async () => {
  const tmpdir = path.join(tmp, 'private-tmp')
  await fsp.mkdir(tmpdir)
  const tar = path.join(tmp, 'sigint.tar')
  const { code } = await killMidBlob([`oci:${path.join(tmp, 'src')}:t`, `docker-archive:${tar}:example/x:t`], 'SIGINT', { ...process.env, TMPDIR: tmpdir })
  assert.equal(code, 130)
  assert.deepEqual(await fsp.readdir(tmpdir), [], 'the spool directory is gone')
  await assert.rejects(fsp.stat(tar), 'no archive was written')
  assert.deepEqual((await fsp.readdir(tmp)).filter((n) => n.startsWith('.sigint.tar')), [], 'no temp archive left beside the target')
})
