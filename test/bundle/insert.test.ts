/** `lading insert` (umoci insert): files, directories, --whiteout and --opaque as new layers. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { Layout } from '../../src/store/layout.js'
import { resolveImage } from '../../src/store/resolve.js'
import { insertTar, layerPathOf } from '../../src/bundle/insert.js'
import { isLadingError } from '../../src/errors.js'
import { requireTool } from '../helpers/tools.js'
import { lading, ladingOk, runOk } from '../helpers/cli.js'
import { diffTrees, treeOf } from '../fixtures/tree.js'
import { type Entry, initImage, layerTar } from '../fixtures/image.js'
import { tarNames } from '../fixtures/tar.js'
import { tempDir } from '../fixtures/temp.js'

const BASE: Entry[] = [
  { name: 'etc/', type: 'directory' },
  { name: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\n' },
  { name: 'etc/group', body: 'root:x:0:\n' },
  { name: 'etc/conf.d/', type: 'directory' },
  { name: 'etc/conf.d/a', body: 'a\n' },
]

test('layerPathOf: absolute targets only, normalised, no "..", no whiteout names; the root is ""', () => {
  assert.equal(layerPathOf('/opt//app/./x/'), 'opt/app/x')
  assert.equal(layerPathOf('/'), '')
  for (const [bad, code] of [
    ['rel/path', 'USAGE'],
    ['/a/../../etc', 'UNSAFE_PATH'],
    ['/a/.wh.b', 'USAGE'],
  ] as const) {
    assert.throws(
      () => layerPathOf(bad),
      (e) => isLadingError(e, code),
      bad,
    )
  }
})

test('insert a file, a directory, a whiteout and an opaque directory; lading and umoci unpack the result alike', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/sh'] } })
  const host = path.join(dir, 'host')
  await fsp.mkdir(path.join(host, 'tree/sub'), { recursive: true })
  await fsp.writeFile(path.join(host, 'tree/sub/f'), 'from host\n')
  await fsp.writeFile(path.join(host, 'tree/top'), 'top\n')
  await fsp.chmod(path.join(host, 'tree/top'), 0o4750)
  await fsp.symlink('sub/f', path.join(host, 'tree/link'))
  await fsp.writeFile(path.join(host, 'single'), 'single file\n')
  await fsp.mkdir(path.join(host, 'newconf'))
  await fsp.writeFile(path.join(host, 'newconf/b'), 'b\n')

  ladingOk(['insert', '--image', img.dir, path.join(host, 'single'), '/usr/local/bin/single'])
  ladingOk(['insert', '--image', img.dir, path.join(host, 'tree'), '/opt/tree', '--history.comment', 'a tree'])
  ladingOk(['insert', '--image', img.dir, '--whiteout', '/etc/group'])
  ladingOk(['insert', '--image', img.dir, '--opaque', path.join(host, 'newconf'), '/etc/conf.d'])

  const layout = await Layout.open(img.dir)
  const image = await resolveImage(layout, { tag: 'latest' }, 'any')
  assert.equal(image.manifest.layers.length, 5)
  assert.equal(image.config.history?.length, 5)
  assert.equal(image.config.history![2]!.created_by!, 'lading insert /opt/tree', 'the host SOURCE path is not recorded')
  assert.equal(image.config.history![2]!.comment, 'a tree')
  assert.deepEqual(await tarNames(await layerTar(layout, image.manifest.layers[3]!)), ['etc/.wh.group'])
  const opaqueNames = await tarNames(await layerTar(layout, image.manifest.layers[4]!))
  assert.deepEqual(opaqueNames, ['etc/conf.d/.wh..wh..opq', 'etc/conf.d/', 'etc/conf.d/b'])
  ladingOk(['validate', '--image', img.dir])

  const b = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', img.dir, b])
  const root = path.join(b, 'rootfs')
  assert.equal(await fsp.readFile(path.join(root, 'usr/local/bin/single'), 'utf8'), 'single file\n')
  assert.equal(await fsp.readFile(path.join(root, 'opt/tree/sub/f'), 'utf8'), 'from host\n')
  assert.equal(await fsp.readlink(path.join(root, 'opt/tree/link')), 'sub/f')
  assert.equal((await fsp.stat(path.join(root, 'opt/tree/top'))).mode & 0o7777, 0o4750)
  await assert.rejects(fsp.access(path.join(root, 'etc/group')))
  assert.deepEqual(await fsp.readdir(path.join(root, 'etc/conf.d')), ['b'])
  assert.equal(await fsp.readFile(path.join(root, 'etc/passwd'), 'utf8'), 'root:x:0:0::/root:/bin/sh\n')

  if (requireTool(t, 'umoci')) {
    const u = path.join(dir, 'umoci')
    runOk('umoci', ['unpack', '--image', img.dir, u])
    assert.deepEqual(diffTrees(treeOf(root), treeOf(path.join(u, 'rootfs')), ['lading', 'umoci']), [])
  }
})

test('insert --tag writes a new tag and leaves the original; bad arguments are usage errors', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE] })
  const f = path.join(dir, 'f')
  await fsp.writeFile(f, 'x')
  ladingOk(['insert', '--image', `${img.dir}:latest`, '--tag', 'plus', f, '/f'])
  const layout = await Layout.open(img.dir)
  assert.equal((await resolveImage(layout, { tag: 'latest' }, 'any')).manifestDescriptor.digest, img.manifest.digest)
  assert.equal((await resolveImage(layout, { tag: 'plus' }, 'any')).manifest.layers.length, 2)
  assert.equal(lading(['insert', '--image', img.dir, f]).status, 2)
  assert.equal(lading(['insert', '--image', img.dir, '--whiteout', f, '/x']).status, 2)
  assert.equal(lading(['insert', '--image', img.dir, '--opaque', f, '/x']).status, 2)
  const r = lading(['insert', '--image', img.dir, f, '/a/../../x'])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /contains "\.\."/)
  const missing = lading(['insert', '--image', img.dir, path.join(dir, 'nope'), '/x'])
  assert.equal(missing.status, 1)
  assert.match(missing.stderr, /no such file/)
})

test("insert DIR / puts the directory's contents at the top of the image (umoci insert DIR /); a file or a whiteout at / is refused", async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/sh'] } })
  const host = path.join(dir, 'host')
  await fsp.mkdir(path.join(host, 'app'), { recursive: true })
  await fsp.writeFile(path.join(host, 'app/run'), 'run\n')
  await fsp.writeFile(path.join(host, 'top'), 'top\n')
  ladingOk(['insert', '--image', img.dir, host, '/'])
  const layout = await Layout.open(img.dir)
  const image = await resolveImage(layout, { tag: 'latest' }, 'any')
  assert.deepEqual(await tarNames(await layerTar(layout, image.manifest.layers.at(-1)!)), ['app/', 'app/run', 'top'])
  assert.equal(image.config.history!.at(-1)!.created_by, 'lading insert /')
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', img.dir, bundle])
  assert.equal(await fsp.readFile(path.join(bundle, 'rootfs/app/run'), 'utf8'), 'run\n')
  assert.equal(await fsp.readFile(path.join(bundle, 'rootfs/etc/passwd'), 'utf8'), 'root:x:0:0::/root:/bin/sh\n', 'lower layers stay')
  if (requireTool(t, 'umoci')) {
    const theirs = path.join(dir, 'umoci-bundle')
    runOk('umoci', ['unpack', '--image', img.dir, theirs])
    assert.deepEqual(diffTrees(treeOf(path.join(bundle, 'rootfs')), treeOf(path.join(theirs, 'rootfs')), ['lading', 'umoci']), [])
  }
  for (const args of [
    [path.join(host, 'top'), '/'],
    ['--whiteout', '/'],
  ]) {
    const r = lading(['insert', '--image', img.dir, ...args])
    assert.equal(r.status, 2, r.stderr)
    assert.match(r.stderr, /^lading: .*(root|"\/")/)
  }
})

test('insertTar honours the mtime clamp (reproducible insert layers)', async (t) => {
  const dir = tempDir(t)
  await fsp.writeFile(path.join(dir, 'f'), 'x')
  const clamp = new Date('2020-01-01T00:00:00Z')
  const chunks: Buffer[] = []
  for await (const c of await insertTar({ source: path.join(dir, 'f'), target: '/f', mtimeClamp: clamp })) chunks.push(c as Buffer)
  const tar = Buffer.concat(chunks)
  // ustar mtime field: 12 bytes of octal at offset 136.
  assert.equal(parseInt(tar.subarray(136, 147).toString(), 8), clamp.getTime() / 1000)
})

test('insert and repack refuse to move a tag naming an index (it would drop the other platforms)', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/sh'] } })
  const layout = await Layout.open(img.dir)
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { ...img.manifest, platform: { os: 'linux', architecture: 'amd64' } },
      { ...img.manifest, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  }
  const desc = await layout.putManifest(Buffer.from(JSON.stringify(index)), 'application/vnd.oci.image.index.v1+json')
  await layout.setTag('multi', desc)
  const f = path.join(dir, 'f')
  await fsp.writeFile(f, 'x')
  const r = lading(['insert', '--image', `${img.dir}:multi`, f, '/f'])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /names an index/)
  assert.equal((await layout.resolveTag('multi')).digest, desc.digest)
  // Into another tag it works.
  ladingOk(['insert', '--image', `${img.dir}:multi`, '--tag', 'single', f, '/f'])
  // repack likewise.
  const bundle = path.join(dir, 'b')
  ladingOk(['unpack', '--image', `${img.dir}:latest`, bundle])
  await fsp.writeFile(path.join(bundle, 'rootfs/new'), 'n')
  const rp = lading(['repack', '--image', `${img.dir}:multi`, bundle])
  assert.equal(rp.status, 1)
  assert.match(rp.stderr, /names an index/)
})
