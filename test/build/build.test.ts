/**
 * `lading build` end to end: the cache, reproducibility, outputs, RUN in runc (mounts, network),
 * ADD of archives and URLs, and bad input (one clear error each, nothing tagged).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { digestOf } from '../../src/digest/digest.js'
import { Layout } from '../../src/store/layout.js'
import { debianFixtures } from '../fixtures/debian.js'
import { ladingOk, run } from '../helpers/cli.js'
import { requireTool } from '../helpers/tools.js'
import { buildTar } from '../layer/helpers/tar-builder.js'
import { imageConfig, ladingBuild, ladingBuildOk } from './helpers.js'
import { writeTree } from '../fixtures/write-tree.js'
import { tempDir } from '../fixtures/temp.js'

const BASE = 'oci:/var/tmp/lading-fixtures/layout:minbase'

/** Root, runc and the Debian fixture, or skip. */
function canRun(t: TestContext): boolean {
  if (!requireTool(t, 'runc')) return false
  if (process.getuid?.() !== 0) { t.skip('needs root for runc'); return false }
  return debianFixtures(t) !== undefined
}

function manifestDigest(dir: string, tag: string): string {
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> }
  const m = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag)
  assert.ok(m, `tag ${tag} in ${dir}`)
  return m.digest
}

function tags(dir: string): string[] {
  if (!fs.existsSync(path.join(dir, 'index.json'))) return []
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> }
  return index.manifests.map((d) => d.annotations?.['org.opencontainers.image.ref.name'] ?? '')
}

test('cache: a rebuild with nothing changed runs nothing, writes no layer, gives the same digest; one changed file reruns only later steps', (t) => {
  if (!canRun(t)) return
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, {
    'first.txt': 'one\n', 'second.txt': 'two\n',
    Dockerfile: `FROM ${BASE}\nCOPY first.txt /f1\nRUN echo ran-1 && cp /f1 /r1\nCOPY second.txt /f2\nRUN echo ran-2 && cat /f1 /f2 > /both\nENV A=1\nCMD ["cat", "/both"]\n`,
  })
  const cache = path.join(dir, 'cache')
  const out = `oci:${dir}/out`
  const first = ladingBuildOk(['--cache-dir', cache, '-t', `${out}:one`, ctx])
  assert.match(first.stderr, /^ran-1$/m)
  assert.match(first.stderr, /4 layer\(s\) written/)
  const blobsBefore = fs.readdirSync(path.join(cache, 'layout', 'blobs', 'sha256')).length

  const again = ladingBuildOk(['--cache-dir', cache, '-t', `${out}:two`, ctx])
  assert.doesNotMatch(again.stderr + again.stdout, /^ran-/m)
  assert.match(again.stderr, /0 step\(s\) run, 7 cached, 0 layer\(s\) written/)
  assert.equal(manifestDigest(`${dir}/out`, 'two'), manifestDigest(`${dir}/out`, 'one'))
  assert.equal(fs.readdirSync(path.join(cache, 'layout', 'blobs', 'sha256')).length, blobsBefore, 'no blob written by the cached rebuild')

  fs.writeFileSync(path.join(ctx, 'second.txt'), 'TWO\n')
  const changed = ladingBuildOk(['--cache-dir', cache, '--progress', 'plain', '-t', `${out}:three`, ctx])
  assert.match(changed.stderr, /STEP 2\/7: COPY first.txt \/f1 \(cached\)/)
  assert.match(changed.stderr, /STEP 3\/7: RUN echo ran-1 && cp \/f1 \/r1 \(cached\)/)
  assert.match(changed.stderr, /STEP 4\/7: COPY second.txt \/f2\n/)
  assert.doesNotMatch(changed.stderr, /^ran-1$/m)
  assert.match(changed.stderr, /^ran-2$/m)
  assert.match(changed.stderr, /4 step\(s\) run, 3 cached, 2 layer\(s\) written/)
  assert.notEqual(manifestDigest(`${dir}/out`, 'three'), manifestDigest(`${dir}/out`, 'one'))

  const nocache = ladingBuildOk(['--cache-dir', cache, '--no-cache', '-t', `${out}:four`, ctx])
  assert.match(nocache.stderr, /^ran-1$/m)
})

test('reproducible: SOURCE_DATE_EPOCH builds in different directories at different times give the same digest', async (t) => {
  if (!canRun(t)) return
  const digests: string[] = []
  // File times after SOURCE_DATE_EPOCH (a checkout made later than the commit) are clamped to it.
  for (const when of ['2024-01-01T00:00:00Z', '2025-06-01T12:00:00Z']) {
    const dir = tempDir(t)
    const ctx = path.join(dir, 'some', 'ctx')
    writeTree(ctx, { 'app/x.txt': 'x\n', 'app/y/z.txt': 'z\n', Dockerfile: `FROM ${BASE}\nCOPY app /app\nRUN echo built > /app/stamp && touch /app\nENV A=b\n` })
    // Different file times in the two contexts.
    execFileSync('touch', ['-d', when, path.join(ctx, 'app/x.txt'), path.join(ctx, 'app/y/z.txt')])
    ladingBuildOk(['--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out:r`, ctx], { SOURCE_DATE_EPOCH: '1700000000' })
    digests.push(manifestDigest(`${dir}/out`, 'r'))
    const cfg = await imageConfig(`${dir}/out`, 'r')
    assert.equal(cfg.created, '2023-11-14T22:13:20Z')
    assert.ok(cfg.history!.slice(2).every((h) => h.created === '2023-11-14T22:13:20Z'))
  }
  assert.equal(digests[0], digests[1])
})

test('outputs: several -t (oci:, docker-archive:, oci-archive:), --iidfile, --digestfile, --target, JSON progress', (t) => {
  if (!canRun(t)) return
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { 'a': 'a\n', Dockerfile: 'FROM scratch AS first\nCOPY a /a\nLABEL stage=first\nFROM first AS second\nCOPY a /b\n' })
  const r = ladingBuildOk(['--cache-dir', path.join(dir, 'cache'), '--target', 'first', '--progress', 'json', '-t', `oci:${dir}/o:t`, '-t', `docker-archive:${dir}/d.tar:img:t`, '-t', `oci-archive:${dir}/o.tar:t`, '--iidfile', `${dir}/iid`, '--digestfile', `${dir}/digest`, ctx])
  const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string })
  assert.ok(events.some((e) => e.type === 'step'))
  assert.equal(events.at(-1)!.type, 'done')
  const iid = fs.readFileSync(`${dir}/iid`, 'utf8')
  assert.equal(r.stdout.trim(), iid)
  assert.equal(fs.readFileSync(`${dir}/digest`, 'utf8'), manifestDigest(`${dir}/o`, 't'))
  const inspect = JSON.parse(ladingOk(['inspect', `docker-archive:${dir}/d.tar`]).stdout) as { Labels?: Record<string, string>; Layers: string[] }
  assert.deepEqual(inspect.Labels, { stage: 'first' })
  assert.equal(inspect.Layers.length, 1)
  ladingOk(['inspect', `oci-archive:${dir}/o.tar:t`])
})

test('runc runs the bundle of the built image, and the RUN outputs are in it', (t) => {
  if (!canRun(t)) return
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { Dockerfile: `FROM ${BASE}\nRUN echo from-run > /made-by-run && useradd -u 4242 builder\nUSER builder\nWORKDIR /tmp\nCMD ["sh", "-c", "cat /made-by-run; id -u; pwd"]\n` })
  ladingBuildOk(['--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out:img`, ctx])
  ladingOk(['unpack', '--image', `${dir}/out:img`, `${dir}/bundle`])
  const r = run('runc', ['--root', path.join(dir, 'runc'), 'run', '--bundle', `${dir}/bundle`, `lading-build-test-${process.pid}`])
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, 'from-run\n4242\n/tmp\n')
})

test('RUN: network none has only loopback, --network host has the host\'s interfaces', (t) => {
  if (!canRun(t)) return
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { Dockerfile: `FROM ${BASE}\nRUN ls /sys/class/net > /ifaces\n` })
  const cache = path.join(dir, 'cache')
  ladingBuildOk(['--cache-dir', cache, '-t', `oci:${dir}/out:none`, ctx])
  // Other programs on the host (containers of parallel tests) add and remove veth interfaces
  // while this runs: the host network is the one that shows every interface the host had both
  // before and after the build.
  const before = fs.readdirSync('/sys/class/net')
  ladingBuildOk(['--cache-dir', cache, '--network', 'host', '-t', `oci:${dir}/out:host`, ctx])
  const stable = fs.readdirSync('/sys/class/net').filter((i) => before.includes(i))
  const ifaces = (tag: string): string[] => {
    const b = `${dir}/b-${tag}`
    ladingOk(['raw', 'unpack', '--image', `${dir}/out:${tag}`, b])
    return fs.readFileSync(`${b}/ifaces`, 'utf8').trim().split('\n')
  }
  assert.deepEqual(ifaces('none'), ['lo'])
  const host = ifaces('host')
  assert.deepEqual(stable.filter((i) => !host.includes(i)), [], 'the host network shows the host interfaces')
  assert.ok(stable.some((i) => i !== 'lo'), 'the host has an interface besides lo, so the check above tells the two networks apart')
})

test('RUN --mount: cache persists across builds, bind from the context and a stage, secrets not in the layer, tmpfs', (t) => {
  if (!canRun(t)) return
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  const secret = path.join(dir, 'token')
  fs.writeFileSync(secret, 's3cr3t')
  writeTree(ctx, {
    'src/in.txt': 'from-context\n',
    Dockerfile: [
      `FROM ${BASE} AS tools`,
      'RUN echo tool > /tool.txt',
      `FROM ${BASE}`,
      'RUN --mount=type=cache,target=/var/cache/x echo run >> /var/cache/x/count && wc -l < /var/cache/x/count > /cache-count',
      'RUN --mount=type=bind,source=src,target=/mnt/src cp /mnt/src/in.txt /copied.txt',
      'RUN --mount=type=bind,from=tools,source=/tool.txt,target=/mnt/tool.txt cp /mnt/tool.txt /tool-copy.txt',
      'RUN --mount=type=secret,id=token cat /run/secrets/token > /secret-len && wc -c < /run/secrets/token > /secret-len',
      'RUN --mount=type=tmpfs,target=/scratch echo gone > /scratch/x && ls /scratch > /tmpfs-seen',
    ].join('\n'),
  })
  const cache = path.join(dir, 'cache')
  ladingBuildOk(['--cache-dir', cache, '--secret', `id=token,src=${secret}`, '-t', `oci:${dir}/out:a`, ctx])
  ladingBuildOk(['--cache-dir', cache, '--no-cache', '--secret', `id=token,src=${secret}`, '-t', `oci:${dir}/out:b`, ctx])
  const b = `${dir}/rootfs`
  ladingOk(['raw', 'unpack', '--image', `${dir}/out:b`, b])
  assert.equal(fs.readFileSync(`${b}/cache-count`, 'utf8').trim(), '2', 'the cache mount kept the first build\'s line')
  assert.equal(fs.readFileSync(`${b}/copied.txt`, 'utf8'), 'from-context\n')
  assert.equal(fs.readFileSync(`${b}/tool-copy.txt`, 'utf8'), 'tool\n')
  assert.equal(fs.readFileSync(`${b}/secret-len`, 'utf8').trim(), '6')
  assert.equal(fs.readFileSync(`${b}/tmpfs-seen`, 'utf8').trim(), 'x')
  // Mount points runc made are not in the image; the secret is nowhere in it.
  for (const p of ['var/cache/x', 'mnt/src', 'mnt/tool.txt', 'run/secrets', 'scratch']) assert.ok(!fs.existsSync(`${b}/${p}`), `${p} left in the image`)
  assert.equal(run('grep', ['-rl', 's3cr3t', b]).status, 1, 'the secret is nowhere in the image')
})

test('ADD extracts local tar archives (plain, gzip, bzip2, xz, zstd) and copies other files as they are', (t) => {
  if (!canRun(t)) return
  for (const tool of ['gzip', 'bzip2', 'xz', 'zstd']) if (!requireTool(t, tool)) return
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  const payload = path.join(dir, 'payload')
  writeTree(payload, { 'p/file.txt': 'payload\n', 'p/link': { link: 'file.txt' } })
  fs.mkdirSync(ctx)
  execFileSync('tar', ['--owner=123', '--group=456', '-C', payload, '-cf', path.join(ctx, 'plain.tar'), 'p'])
  for (const [tool, ext] of [['gzip', 'gz'], ['bzip2', 'bz2'], ['xz', 'xz'], ['zstd', 'zst']] as const) {
    fs.copyFileSync(path.join(ctx, 'plain.tar'), path.join(ctx, `a.tar`))
    execFileSync(tool, ['-q', path.join(ctx, 'a.tar')])
    if (tool === 'zstd') fs.rmSync(path.join(ctx, 'a.tar'))
    assert.ok(fs.existsSync(path.join(ctx, `a.tar.${ext}`)))
  }
  fs.writeFileSync(path.join(ctx, 'notatar.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]))
  writeTree(ctx, { Dockerfile: 'FROM scratch\nADD plain.tar /plain/\nADD a.tar.gz /gz/\nADD a.tar.bz2 /bz2/\nADD a.tar.xz /xz/\nADD a.tar.zst /zst/\nADD notatar.gz /raw/\n' })
  ladingBuildOk(['--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out:a`, ctx])
  const b = `${dir}/rootfs`
  ladingOk(['raw', 'unpack', '--image', `${dir}/out:a`, b])
  for (const d of ['plain', 'gz', 'bz2', 'xz', 'zst']) {
    assert.equal(fs.readFileSync(`${b}/${d}/p/file.txt`, 'utf8'), 'payload\n', d)
    assert.equal(fs.readlinkSync(`${b}/${d}/p/link`), 'file.txt')
    assert.equal(fs.statSync(`${b}/${d}/p/file.txt`).uid, 123, 'archive owners are kept')
  }
  assert.deepEqual(fs.readFileSync(`${b}/raw/notatar.gz`), Buffer.from([0x1f, 0x8b, 1, 2, 3]))
})

test('ADD <url> from a loopback server: --checksum honoured, a mismatch is one error and nothing is tagged', async (t) => {
  if (!canRun(t)) return
  const body = Buffer.from('downloaded content\n')
  const server = http.createServer((req, res) => {
    res.setHeader('Last-Modified', 'Wed, 01 Jan 2020 00:00:00 GMT')
    res.end(req.url === '/file.txt' ? body : 'other')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => server.close())
  const port = (server.address() as import('node:net').AddressInfo).port
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { Dockerfile: `FROM scratch\nADD --checksum=${digestOf(body)} http://127.0.0.1:${port}/file.txt /dl/\n` })
  const args = ['--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out:a`, ctx]
  await new Promise<void>((resolve, reject) => {
    // The server runs in this process: run the CLI asynchronously.
    import('node:child_process').then(({ execFile }) => execFile(path.join(process.cwd(), 'bin/lading'), ['build', ...args], (e, _o, stderr) => (e ? reject(new Error(stderr)) : resolve())), reject)
  })
  const b = `${dir}/rootfs`
  ladingOk(['raw', 'unpack', '--image', `${dir}/out:a`, b])
  assert.deepEqual(fs.readFileSync(`${b}/dl/file.txt`), body)
  assert.equal(fs.statSync(`${b}/dl/file.txt`).mode & 0o777, 0o600)
  assert.equal(fs.statSync(`${b}/dl/file.txt`).mtime.toISOString(), '2020-01-01T00:00:00.000Z')

  writeTree(ctx, { Dockerfile: `FROM scratch\nADD --checksum=${digestOf('nope')} http://127.0.0.1:${port}/file.txt /dl/\n` })
  const err = await new Promise<{ code: number; stderr: string }>((resolve) => {
    void import('node:child_process').then(({ execFile }) => execFile(path.join(process.cwd(), 'bin/lading'), ['build', '--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out2:a`, ctx], (e, _o, stderr) => resolve({ code: (e as { code?: number } | null)?.code ?? 0, stderr })))
  })
  assert.equal(err.code, 1)
  assert.match(err.stderr, /lading: Dockerfile:2:1: ADD http:\/\/127\.0\.0\.1:\d+\/file\.txt: --checksum=sha256:[0-9a-f]{64} but the content is sha256:[0-9a-f]{64}\n$/)
  assert.deepEqual(tags(`${dir}/out2`), [])
})

/** One failing build: exit 1, one line on stderr matching `why`, nothing at the destination. */
function fails(t: TestContext, files: Record<string, string | { link: string }>, why: RegExp, extra: string[] = []): void {
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, files)
  const r = ladingBuild(['--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out:t`, ...extra, ctx])
  assert.equal(r.status, 1, r.stderr)
  assert.match(r.stderr, why)
  assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('lading:')).length, 1, r.stderr)
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace')
  assert.deepEqual(tags(`${dir}/out`), [], 'nothing tagged')
}

test('bad input: missing context file', (t) => {
  fails(t, { Dockerfile: 'FROM scratch\nCOPY missing.txt /x\n' }, /^lading: Dockerfile:2:1: "missing.txt": no such file or directory in the build context$/m)
})

test('bad input: failing RUN gives its exit status and last lines of output', (t) => {
  if (!canRun(t)) return
  // Both lines, in either order: runc copies the container's stdout and stderr separately.
  fails(
    t,
    { Dockerfile: `FROM ${BASE}\nRUN echo line-one && echo line-two >&2 && exit 3\n` },
    /^lading: Dockerfile:2:1: RUN echo line-one && echo line-two >&2 && exit 3: exited with status 3; last output: (line-one \| line-two|line-two \| line-one)$/m,
    ['--progress', 'tty'],
  )
})

test('bad input: unknown instruction', (t) => {
  fails(t, { Dockerfile: 'FROM scratch\nFROBNICATE x\n' }, /^lading: Dockerfile:2:1: unknown instruction "FROBNICATE"$/m)
})

test('bad input: stage cycle', (t) => {
  fails(t, { a: 'a', Dockerfile: 'FROM scratch AS a\nCOPY --from=b /a /a\nFROM scratch AS b\nCOPY --from=a /a /b\n' }, /^lading: Dockerfile:\d+:1: circular dependency between stages: (a -> b -> a|b -> a -> b)$/m)
})

test('security: COPY of ../ escaping the context is refused', (t) => {
  fails(t, { Dockerfile: 'FROM scratch\nCOPY ../../../etc/passwd /x\n' }, /^lading: Dockerfile:2:1: "..\/..\/..\/etc\/passwd" is outside the build context$/m)
})

test('security: a symlink in the context cannot reach host files (resolved inside the context)', (t) => {
  fails(t, { 'evil': { link: '/etc' }, 'evil2': { link: '../../../../etc/passwd' }, Dockerfile: 'FROM scratch\nCOPY evil2 /x\n' }, /"evil2": no such file or directory in the build context/)
  fails(t, { 'evil': { link: '/etc' }, Dockerfile: 'FROM scratch\nCOPY evil/passwd /x\n' }, /"evil\/passwd": no such file or directory in the build context/)
})

test('security: a symlink inside a copied directory is copied as a symlink, not followed', async (t) => {
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { 'd/link': { link: '/etc/passwd' }, 'd/f': 'f', Dockerfile: 'FROM scratch\nCOPY d /d\n' })
  ladingBuildOk(['--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out:a`, ctx])
  const layout = await Layout.open(`${dir}/out`)
  assert.ok(layout)
  const b = `${dir}/rootfs`
  ladingOk(['raw', 'unpack', '--image', `${dir}/out:a`, b])
  assert.equal(fs.readlinkSync(`${b}/d/link`), '/etc/passwd')
})

test('security: ADD of a tar whose entries climb out of the destination stays inside the rootfs', (t) => {
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  fs.mkdirSync(ctx)
  fs.writeFileSync(path.join(ctx, 'evil.tar'), buildTar([{ name: '../../../../escaped.txt', data: 'x' }]))
  writeTree(ctx, { Dockerfile: 'FROM scratch\nADD evil.tar /x/\n' })
  const r = ladingBuild(['--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out:t`, ctx])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^lading: Dockerfile:2:1: .*escaped\.txt/m)
  assert.ok(!fs.existsSync(path.join(dir, 'escaped.txt')) && !fs.existsSync('/escaped.txt'))
  assert.deepEqual(tags(`${dir}/out`), [])
})

test('usage errors exit 2', (t) => {
  const dir = tempDir(t)
  const r = ladingBuild(['--network', 'bridge', dir])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /^lading: --network: expected none or host/)
})

test('ONBUILD: triggers are stored, run when a later build uses the image as its base, and not inherited', async (t) => {
  if (!canRun(t)) return
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { 'payload.txt': 'p\n', Dockerfile: `FROM ${BASE}\nONBUILD COPY payload.txt /onbuild/\nONBUILD RUN echo triggered > /onbuild/ran\n` })
  const cache = path.join(dir, 'cache')
  ladingBuildOk(['--cache-dir', cache, '-t', `oci:${dir}/base:t`, ctx])
  assert.deepEqual((await imageConfig(`${dir}/base`, 't')).config?.OnBuild, ['COPY payload.txt /onbuild/', 'RUN echo triggered > /onbuild/ran'])
  writeTree(ctx, { Dockerfile: `FROM oci:${dir}/base:t\nRUN cat /onbuild/ran /onbuild/payload.txt > /both\n` })
  ladingBuildOk(['--cache-dir', cache, '-t', `oci:${dir}/child:t`, ctx])
  const b = `${dir}/rootfs`
  ladingOk(['raw', 'unpack', '--image', `${dir}/child:t`, b])
  assert.equal(fs.readFileSync(`${b}/both`, 'utf8'), 'triggered\np\n')
  assert.equal((await imageConfig(`${dir}/child`, 't')).config?.OnBuild, undefined)
})

test('concurrent builds sharing one cache run each step once and agree', async (t) => {
  if (!canRun(t)) return
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  // The sleep keeps the first build's RUN going while the second reaches it.
  writeTree(ctx, { 'a.txt': 'a\n', Dockerfile: `FROM ${BASE}\nCOPY a.txt /a.txt\nRUN sleep 1 && cp /a.txt /b.txt\nCMD ["cat", "/b.txt"]\n` })
  const { execFile } = await import('node:child_process')
  const one = (tag: string): Promise<string> => new Promise((resolve, reject) => {
    execFile(path.join(process.cwd(), 'bin/lading'), ['build', '--progress', 'plain', '--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out:${tag}`, ctx], (e, _o, stderr) => (e ? reject(new Error(stderr)) : resolve(stderr)))
  })
  const logs = await Promise.all([one('x'), one('y')])
  // Each step that makes a layer ran in one build; the other waited for its lock and took the result.
  for (const step of ['COPY a.txt /a.txt', 'RUN sleep 1 && cp /a.txt /b.txt']) {
    const lines = logs.map((l) => l.split('\n').find((x) => x.includes(`: ${step}`)) ?? '')
    assert.deepEqual(lines.map((l) => l.endsWith('(cached)')).sort(), [false, true], `${step}:\n${logs.join('\n---\n')}`)
  }
  const cx = await imageConfig(`${dir}/out`, 'x')
  const cy = await imageConfig(`${dir}/out`, 'y')
  assert.deepEqual(cx.rootfs.diff_ids, cy.rootfs.diff_ids)
  // Nothing of either build is left in the cache's work directory.
  assert.deepEqual(fs.readdirSync(path.join(dir, 'cache', 'work')), [])
})

test('interrupted: SIGINT during a RUN stops it, removes the container and the work tree, tags nothing', async (t) => {
  if (!canRun(t)) return
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { Dockerfile: `FROM ${BASE}\nRUN echo started && sleep 600\n` })
  const { spawn } = await import('node:child_process')
  const child = spawn(path.join(process.cwd(), 'bin/lading'), ['build', '--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out:t`, ctx], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  let sent = false
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString()
    if (!sent && stderr.includes('started\n')) { sent = true; child.kill('SIGINT') }
  })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  assert.equal(code, 130, stderr)
  assert.match(stderr, /^lading: interrupted by SIGINT: .*build: removed what was written/m)
  assert.deepEqual(tags(`${dir}/out`), [])
  assert.deepEqual(fs.readdirSync(path.join(dir, 'cache', 'work')), [])
  assert.doesNotMatch(run('runc', ['list']).stdout, /lading-build/)
})

test('rootless: an unprivileged user builds with RUN in runc\'s rootless mode; new files are root\'s in the image', async (t) => {
  if (!canRun(t) || !requireTool(t, 'runuser')) return
  const USER = 'ladingtest'
  if (run('id', ['-u', USER]).status !== 0) {
    if (process.env.CI === 'true') throw new Error(`user ${USER} missing, and CI=true forbids skipping`)
    t.skip(`user ${USER} missing`)
    return
  }
  const dir = tempDir(t)
  fs.chmodSync(dir, 0o755)
  // The user's own copy of the base image (the fixture's blobs are mode 0600, root's).
  execFileSync('cp', ['-a', '/var/tmp/lading-fixtures/layout', `${dir}/base`])
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { 'a.txt': 'a\n', Dockerfile: `FROM oci:${dir}/base:minbase\nCOPY a.txt /opt/a.txt\nRUN echo rootless > /made && rm /etc/issue.net && id -u > /uid\nWORKDIR /w\n` })
  execFileSync('chown', ['-R', USER, dir])
  const r = run('runuser', ['-u', USER, '--', path.join(process.cwd(), 'bin/lading'), 'build', '--cache-dir', `${dir}/cache`, '-t', `oci:${dir}/out:t`, ctx], { env: { ...process.env, HOME: dir } })
  assert.equal(r.status, 0, r.stderr)
  const b = `${dir}/rootfs`
  ladingOk(['raw', 'unpack', '--image', `${dir}/out:t`, b])
  assert.equal(fs.readFileSync(`${b}/made`, 'utf8'), 'rootless\n')
  assert.equal(fs.readFileSync(`${b}/uid`, 'utf8'), '0\n')
  assert.ok(!fs.existsSync(`${b}/etc/issue.net`))
  for (const p of ['made', 'opt/a.txt', 'w']) assert.equal(fs.statSync(`${b}/${p}`).uid, 0, p)
  assert.equal(fs.statSync(`${b}/etc/passwd`).uid, 0)
})

test('registry: -t docker:// pushes; FROM a plain name pulls it (docker:// with the registries.conf rules)', async (t) => {
  const { registryAvailable, startRegistry } = await import('../helpers/registry.js')
  if (!registryAvailable()) {
    if (process.env.CI === 'true') throw new Error('docker-registry not installed, and CI=true forbids skipping')
    t.skip('docker-registry not installed')
    return
  }
  const reg = await startRegistry()
  t.after(() => reg.stop())
  const dir = tempDir(t)
  const env = { HOME: dir, REGISTRY_AUTH_FILE: '', XDG_RUNTIME_DIR: '', DOCKER_CONFIG: '', XDG_CONFIG_HOME: dir }
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { 'base.txt': 'base\n', 'top.txt': 'top\n', Dockerfile: 'FROM scratch\nCOPY base.txt /\n' })
  ladingBuildOk(['--cache-dir', `${dir}/cache`, '--tls-verify=false', '-t', `docker://${reg.host}/build/base:1`, ctx], env)
  writeTree(ctx, { Dockerfile: `FROM ${reg.host}/build/base:1\nCOPY top.txt /\n` })
  ladingBuildOk(['--cache-dir', `${dir}/cache2`, '--tls-verify=false', '-t', `oci:${dir}/out:t`, ctx], env)
  const b = `${dir}/rootfs`
  ladingOk(['raw', 'unpack', '--image', `${dir}/out:t`, b])
  assert.deepEqual(fs.readdirSync(b).sort(), ['base.txt', 'top.txt'])
})

test('config and history as docker build (BuildKit) records them', async (t) => {
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, {
    'f.txt': 'f\n',
    Dockerfile: [
      'FROM scratch',
      'ARG V=1',
      'ENV LEGACY value with spaces',
      'ENV A=$V B="two words" C=${UNSET:-dflt}',
      'LABEL "com.example.a"="x y" b=$V',
      'EXPOSE 80 8000-8002/udp',
      'WORKDIR /app',
      'COPY f.txt .',
      'USER 1000:1000',
      'VOLUME ["/data"]',
      'STOPSIGNAL SIGINT',
      'HEALTHCHECK --interval=1m30s --retries=2 CMD ["/bin/check", "-q"]',
      'CMD ["run"]',
      'ENTRYPOINT ["/entry"]',
      'SHELL ["/bin/bash", "-c"]',
      'ONBUILD RUN echo hi',
    ].join('\n'),
  })
  ladingBuildOk(['--cache-dir', `${dir}/cache`, '-t', `oci:${dir}/out:t`, ctx], { SOURCE_DATE_EPOCH: '0' })
  const cfg = await imageConfig(`${dir}/out`, 't')
  const c = cfg.config!
  assert.deepEqual(c.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LEGACY=value with spaces', 'A=1', 'B=two words', 'C=dflt'])
  assert.deepEqual(c.Labels, { 'com.example.a': 'x y', b: '1' })
  assert.deepEqual(Object.keys(c.ExposedPorts!).sort(), ['80/tcp', '8000/udp', '8001/udp', '8002/udp'])
  assert.equal(c.WorkingDir, '/app')
  assert.equal(c.User, '1000:1000')
  assert.deepEqual(c.Volumes, { '/data': {} })
  assert.equal(c.StopSignal, 'SIGINT')
  assert.deepEqual(c.Healthcheck, { Test: ['CMD', '/bin/check', '-q'], Interval: 90e9, Retries: 2 })
  // CMD given in this stage survives the ENTRYPOINT after it.
  assert.deepEqual(c.Cmd, ['run'])
  assert.deepEqual(c.Entrypoint, ['/entry'])
  assert.deepEqual(c.Shell, ['/bin/bash', '-c'])
  assert.deepEqual(c.OnBuild, ['RUN echo hi'])
  assert.equal(cfg.created, '1970-01-01T00:00:00Z')
  assert.deepEqual(cfg.history!.map((h) => [h.created_by, h.empty_layer ?? false]), [
    ['ENV LEGACY=value with spaces', true],
    ['ENV A=1 B=two words C=dflt', true],
    ['LABEL com.example.a=x y b=1', true],
    ['EXPOSE map[80/tcp:{} 8000/udp:{} 8001/udp:{} 8002/udp:{}]', true],
    ['WORKDIR /app', false],
    ['COPY f.txt . # buildkit', false],
    ['USER 1000:1000', true],
    ['VOLUME [/data]', true],
    ['STOPSIGNAL SIGINT', true],
    ['HEALTHCHECK {"Test":["CMD","/bin/check","-q"],"Interval":90000000000,"Retries":2}', true],
    ['CMD ["run"]', true],
    ['ENTRYPOINT ["/entry"]', true],
    ['SHELL [/bin/bash -c]', true],
    ['ONBUILD RUN echo hi', true],
  ])
  assert.ok(cfg.history!.every((h) => h.created === '1970-01-01T00:00:00Z'))
  assert.equal(cfg.rootfs.diff_ids.length, 2)
})

test('ENTRYPOINT resets a CMD inherited from the base stage', async (t) => {
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { Dockerfile: 'FROM scratch AS base\nCMD ["base-cmd"]\nFROM base\nENTRYPOINT ["/e"]\n' })
  ladingBuildOk(['--cache-dir', `${dir}/cache`, '-t', `oci:${dir}/out:t`, ctx])
  const c = (await imageConfig(`${dir}/out`, 't')).config!
  assert.deepEqual(c.Entrypoint, ['/e'])
  assert.equal(c.Cmd, undefined)
})

test('work trees of killed builds are removed by the next build; those of running ones are kept', (t) => {
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { 'a': 'a', Dockerfile: 'FROM scratch\nCOPY a /a\n' })
  const dead = run('sh', ['-c', 'echo $$']).stdout.trim()
  const stale = path.join(dir, 'cache', 'work', `${dead}-0123abcd`, 'tree-1', 'rootfs')
  const live = path.join(dir, 'cache', 'work', `${process.pid}-0123abcd`)
  fs.mkdirSync(stale, { recursive: true })
  fs.mkdirSync(live, { recursive: true })
  ladingBuildOk(['--cache-dir', `${dir}/cache`, ctx])
  assert.deepEqual(fs.readdirSync(path.join(dir, 'cache', 'work')), [path.basename(live)])
})

test('library: build() and exportImage() from the package API', async (t) => {
  const lading = { ...(await import('lading')), ...(await import('lading/build')) }
  const dir = tempDir(t)
  const ctx = path.join(dir, 'ctx')
  writeTree(ctx, { 'a.txt': 'a\n', Dockerfile: 'FROM scratch\nCOPY a.txt /\nCMD ["x"]\n' })
  const events: string[] = []
  const result = await lading.build({ context: ctx, cacheDir: `${dir}/cache`, onEvent: (e) => { if (e.type === 'step') events.push(e.text) } })
  assert.deepEqual(events, ['FROM scratch', 'COPY a.txt /', 'CMD ["x"]'])
  assert.equal(result.stepsRun, 2)
  const [written] = await lading.exportImage(result, [lading.parseReference(`oci:${dir}/out:t`)])
  assert.equal(written!.digest, result.manifest.digest)
  assert.equal((await imageConfig(`${dir}/out`, 't')).config?.Cmd?.[0], 'x')
})

test('bad input: a missing secret file, a required secret not given', (t) => {
  fails(t, { Dockerfile: 'FROM scratch\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\n' }, /^lading: Dockerfile:2:1: secret "tok": \/nonexistent\/tok is not a readable file$/m, ['--secret', 'id=tok,src=/nonexistent/tok'])
  fails(t, { Dockerfile: 'FROM scratch\nRUN --mount=type=secret,id=tok,required true\n' }, /^lading: Dockerfile:2:1: secret "tok" is required: give --secret id=tok,src=FILE$/m)
})
