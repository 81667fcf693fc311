/**
 * `lading unpack` / `lading raw unpack` / `lading raw runtime-config` on images built in code:
 * the bundle layout, all-or-nothing on failure, and refusal of unsafe input.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lstatSync, promises as fsp, readFileSync, readlinkSync } from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import { isLadingError } from '../../src/errors.js'
import { applyImageLayers } from '../../src/bundle/unpack.js'
import { readBundleState } from '../../src/bundle/state.js'
import { loadSnapshot } from '../../src/layer/snapshot.js'
import { MediaType } from '../../src/spec/media-types.js'
import { digestOf } from '../../src/digest/digest.js'
import { writeImage } from '../../src/store/image.js'
import { lading, ladingOk, runOk } from '../helpers/cli.js'
import { requireTool } from '../helpers/tools.js'
import { diffTrees, treeOf } from '../fixtures/tree.js'
import { type Entry, initImage, tarOf } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const ETC: Entry[] = [
  { name: 'etc/', type: 'directory' },
  { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/sh\nsvc:x:500:600:svc:/srv:/bin/sh\n' },
  { name: 'etc/group', body: 'root:x:0:\nsvc:x:600:\nextra:x:700:svc\n' },
  { name: 'bin/', type: 'directory' },
  { name: 'bin/tool', body: '#!/bin/sh\n', mode: 0o755 },
]

test('unpack writes rootfs, config.json (user resolved from the image), lading.json and a snapshot', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(
    path.join(dir, 'img'),
    {
      layers: [ETC, [{ name: 'bin/tool', body: 'v2\n', mode: 0o700 }]],
      config: { User: 'svc', Entrypoint: ['/bin/tool'], Cmd: ['--x'], Env: ['A=b'], Labels: { l: 'v' } },
    },
    'v1',
  )
  const bundle = path.join(dir, 'bundle')
  const r = ladingOk(['unpack', '--image', `${img.dir}:v1`, bundle])
  assert.match(r.stdout, /2 layers/)
  assert.equal(await fsp.readFile(path.join(bundle, 'rootfs/bin/tool'), 'utf8'), 'v2\n')
  const cfg = JSON.parse(await fsp.readFile(path.join(bundle, 'config.json'), 'utf8'))
  assert.deepEqual(cfg.process.user, { uid: 500, gid: 600, additionalGids: [700] })
  assert.deepEqual(cfg.process.args, ['/bin/tool', '--x'])
  assert.ok(cfg.process.env.includes('A=b') && cfg.process.env.includes('HOME=/srv'))
  assert.equal(cfg.annotations.l, 'v')
  assert.equal(cfg.root.path, 'rootfs')
  const state = await readBundleState(bundle)
  assert.equal(state.manifest.digest, img.manifest.digest)
  assert.equal(state.tag, 'v1')
  assert.equal(state.layout, path.resolve(img.dir))
  const snap = await loadSnapshot(path.join(bundle, state.snapshot))
  assert.ok(snap.entries.has('bin/tool'))
})

test('unpack refuses a non-empty bundle directory and leaves it untouched', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [ETC] })
  const bundle = path.join(dir, 'bundle')
  await fsp.mkdir(bundle)
  await fsp.writeFile(path.join(bundle, 'precious'), 'keep me')
  const r = lading(['unpack', '--image', img.dir, bundle])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /not empty/)
  assert.deepEqual(await fsp.readdir(bundle), ['precious'])
})

test('unpack into an existing empty directory is allowed; on failure it is emptied again, not removed', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [ETC, [{ name: '../escape', body: 'x' }]] })
  const bundle = path.join(dir, 'bundle')
  await fsp.mkdir(bundle)
  const r = lading(['unpack', '--image', img.dir, bundle])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /\.\.\/escape/)
  assert.deepEqual(await fsp.readdir(bundle), [])
  await assert.rejects(fsp.access(path.join(dir, 'escape')))
})

test('security: a symlink to a host directory then a file through it writes nothing outside the root, and a refusal leaves no half bundle', async (t) => {
  const dir = tempDir(t)
  const sentinel = path.join(dir, 'sentinel')
  await fsp.mkdir(sentinel)
  await fsp.writeFile(path.join(sentinel, 'file'), 'untouched')
  // A symlink to the sentinel (outside the root), then a file written through it.
  const img = await initImage(path.join(dir, 'img'), {
    layers: [
      ETC,
      [
        { name: 'evil', type: 'symlink', linkname: sentinel },
        { name: 'evil/file', body: 'overwritten' },
      ],
    ],
  })
  const bundle = path.join(dir, 'bundle')
  const r = lading(['unpack', '--image', img.dir, bundle])
  // Either refused, or written inside the root (the symlink resolved within it): never outside.
  assert.equal(await fsp.readFile(path.join(sentinel, 'file'), 'utf8'), 'untouched')
  assert.deepEqual(await fsp.readdir(sentinel), ['file'])
  if (r.status !== 0) {
    assert.match(r.stderr, /evil/)
    await assert.rejects(fsp.access(bundle), 'the bundle directory we created is removed')
  }
})

test('a corrupted layer blob (digest mismatch) fails the unpack and removes the bundle', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [ETC] })
  const layerDigest = (await img.layout.getManifest({ digest: img.manifest.digest })).bytes
    .toString()
    .match(/"layers":\[\{"mediaType":"[^"]+","digest":"(sha256:[0-9a-f]+)"/)![1]!
  const blob = img.layout.blobPath(layerDigest as never)
  // Same size, different bytes: the gzip of another tar of the same length would be luck, so
  // flip a byte in the gzip trailer (the CRC): the digest check is what must catch it.
  const bytes = await fsp.readFile(blob)
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 5) ^ 0xff, bytes.length - 5)
  await fsp.chmod(blob, 0o644)
  await fsp.writeFile(blob, bytes)
  const bundle = path.join(dir, 'bundle')
  const r = lading(['unpack', '--image', img.dir, bundle])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /digest mismatch|sha256|crc|check/i)
  await assert.rejects(fsp.access(bundle))
})

test('a manifest layer whose media type is not a filesystem layer is refused before any tar parsing', async (t) => {
  const dir = tempDir(t)
  // The store already refuses to write such a manifest; applyImageLayers checks again because a
  // layout written by another tool reaches it too.
  const img = await initImage(path.join(dir, 'img'), { layers: [ETC] })
  const [{ Layout }, { resolveImage }] = await Promise.all([import('../../src/store/layout.js'), import('../../src/store/resolve.js')])
  const resolved = await resolveImage(await Layout.open(img.dir), 'latest')
  const odd = {
    ...resolved,
    manifest: { ...resolved.manifest, layers: [{ ...resolved.manifest.layers[0]!, mediaType: 'application/vnd.example.not-a-layer' }] },
  }
  const root = path.join(dir, 'root')
  await fsp.mkdir(root)
  await assert.rejects(applyImageLayers(odd, root), (e) => isLadingError(e, 'UNSUPPORTED') && /not a filesystem layer/.test((e as Error).message))
  assert.deepEqual(await fsp.readdir(root), [])
})

test('an image config naming a user missing from the rootfs fails the unpack (conversion.md MUST) and cleans up', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [ETC], config: { User: 'nobody-here' } })
  const r = lading(['unpack', '--image', img.dir, path.join(dir, 'b')])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /user "nobody-here" not found/)
  await assert.rejects(fsp.access(path.join(dir, 'b')))
})

test('unpack reads uncompressed layers by media type and refuses a gzip blob labelled as plain tar', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [ETC] })
  const tar = await tarOf([{ name: 'plain', body: 'p\n' }])
  const put = await img.layout.putBlob(tar)
  const m = JSON.parse((await img.layout.getManifest({ digest: img.manifest.digest })).bytes.toString())
  const cfg = JSON.parse((await img.layout.readBlob(m.config)).toString())
  m.layers.push({ mediaType: MediaType.OciLayer, digest: put.digest, size: put.size })
  cfg.rootfs.diff_ids.push(digestOf(tar))
  await writeImage(img.layout, { config: cfg, manifest: m, tag: 'plain' })
  ladingOk(['unpack', '--image', `${img.dir}:plain`, path.join(dir, 'b')])
  assert.equal(await fsp.readFile(path.join(dir, 'b/rootfs/plain'), 'utf8'), 'p\n')
  // A gzip blob labelled as plain tar is a clear error (media type and content disagree).
  const gz = await img.layout.putBlob(zlib.gzipSync(tar))
  m.layers[1] = { mediaType: MediaType.OciLayer, digest: gz.digest, size: gz.size }
  await writeImage(img.layout, { config: cfg, manifest: m, tag: 'mislabelled' })
  const r = lading(['unpack', '--image', `${img.dir}:mislabelled`, path.join(dir, 'c')])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /gzip/)
})

test('raw unpack writes only the rootfs; raw runtime-config writes config.json resolving users from --rootfs', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [ETC], config: { User: 'svc:extra', Cmd: ['/bin/tool'] } })
  const rootfs = path.join(dir, 'rootfs')
  ladingOk(['raw', 'unpack', '--image', img.dir, rootfs])
  assert.deepEqual((await fsp.readdir(rootfs)).sort(), ['bin', 'etc'])
  const cfgFile = path.join(dir, 'config.json')
  ladingOk(['raw', 'runtime-config', '--image', img.dir, '--rootfs', rootfs, cfgFile])
  const cfg = JSON.parse(await fsp.readFile(cfgFile, 'utf8'))
  assert.deepEqual(cfg.process.user, { uid: 500, gid: 700 })
  // Without --rootfs a named user cannot be resolved: an error, not a guess.
  const r = lading(['raw', 'runtime-config', '--image', img.dir, path.join(dir, 'c2.json')])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /not found/)
  const rl = path.join(dir, 'rootless.json')
  ladingOk(['raw', 'runtime-config', '--image', img.dir, '--rootfs', rootfs, '--rootless', '--uid-map', '0:100000:65536', '--gid-map', '0:100000:65536', rl])
  const c3 = JSON.parse(await fsp.readFile(rl, 'utf8'))
  assert.deepEqual(c3.linux.uidMappings, [{ containerID: 0, hostID: 100000, size: 65536 }])
  assert.ok(!c3.linux.namespaces.some((n: { type: string }) => n.type === 'network'))
})

test('--uid-map syntax errors are usage errors', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [ETC] })
  for (const bad of ['0:1000', 'a:b:c', '0:1000:0', '-1:0:1']) {
    const r = lading(['unpack', '--image', img.dir, '--uid-map', bad, path.join(dir, 'b')])
    assert.equal(r.status, 2, bad)
    assert.match(r.stderr, /--uid-map/)
  }
})

test('--verify-diff-ids checks each uncompressed layer against the config diff_ids', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [ETC] })
  const m = JSON.parse((await img.layout.getManifest({ digest: img.manifest.digest })).bytes.toString())
  const cfg = JSON.parse((await img.layout.readBlob(m.config)).toString())
  ladingOk(['unpack', '--verify-diff-ids', '--image', img.dir, path.join(dir, 'ok')])
  cfg.rootfs.diff_ids[0] = digestOf('something else')
  await writeImage(img.layout, { config: cfg, manifest: m, tag: 'lying' })
  // Without the flag the (manifest-verified) blob is unpacked; with it the lie is caught.
  ladingOk(['unpack', '--image', `${img.dir}:lying`, path.join(dir, 'a')])
  const r = lading(['unpack', '--verify-diff-ids', '--image', `${img.dir}:lying`, path.join(dir, 'b')])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /diff_id.*digest mismatch/)
  await assert.rejects(fsp.access(path.join(dir, 'b')))
})

test('unpack --keep-dirlinks keeps symlinks to directories, as umoci unpack --keep-dirlinks does (same tree)', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), {
    layers: [
      [
        { name: 'usr/', type: 'directory' },
        { name: 'usr/lib/', type: 'directory' },
        { name: 'usr/lib/old', body: 'old\n' },
        { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
      ],
      [
        { name: 'lib/', type: 'directory', mode: 0o750 },
        { name: 'lib/new', body: 'new\n' },
      ],
    ],
    config: { Cmd: ['/bin/sh'] },
  })
  const ours = path.join(dir, 'ours')
  ladingOk(['unpack', '--keep-dirlinks', '--image', img.dir, ours])
  assert.equal(readlinkSync(path.join(ours, 'rootfs/lib')), 'usr/lib')
  assert.equal(readFileSync(path.join(ours, 'rootfs/usr/lib/new'), 'utf8'), 'new\n')
  const plain = path.join(dir, 'plain')
  ladingOk(['unpack', '--image', img.dir, plain])
  assert.ok(lstatSync(path.join(plain, 'rootfs/lib')).isDirectory(), 'without the flag the directory replaces the link')
  if (requireTool(t, 'umoci')) {
    const theirs = path.join(dir, 'theirs')
    runOk('umoci', ['unpack', '--keep-dirlinks', '--image', img.dir, theirs])
    assert.deepEqual(diffTrees(treeOf(path.join(ours, 'rootfs')), treeOf(path.join(theirs, 'rootfs')), ['lading', 'umoci']), [])
  }
})
