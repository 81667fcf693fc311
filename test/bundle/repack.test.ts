/**
 * `lading repack`: changesets as layers (image-spec layer.md §Change Types, §Whiteouts), checked
 * by unpacking the result with Lading, umoci and GNU tar, and by validating the documents.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { Layout } from '../../src/store/layout.js'
import { resolveImage } from '../../src/store/resolve.js'
import { applyLayer } from '../../src/layer/apply.js'
import { Readable } from 'node:stream'
import { requireTool } from '../helpers/tools.js'
import { lading, ladingOk, runOk } from '../helpers/cli.js'
import { debianFixtures } from '../fixtures/debian.js'
import { diffTrees, treeOf } from '../fixtures/tree.js'
import { type Entry, initImage, layerTar } from '../fixtures/image.js'
import { tarNames } from '../fixtures/tar.js'
import { tempDir } from '../fixtures/temp.js'

const BASE: Entry[] = [
  { name: 'etc/', type: 'directory' },
  { name: 'etc/keep', body: 'keep\n' },
  { name: 'etc/modify', body: 'old\n' },
  { name: 'etc/delete-me', body: 'bye\n' },
  { name: 'etc/chmod-me', body: 'x\n', mode: 0o644 },
  { name: 'etc/file-to-dir', body: 'file\n' },
  { name: 'var/', type: 'directory' },
  { name: 'var/dir-to-delete/', type: 'directory' },
  { name: 'var/dir-to-delete/a', body: 'a\n' },
  { name: 'var/dir-to-delete/sub/', type: 'directory' },
  { name: 'var/dir-to-delete/sub/b', body: 'b\n' },
  { name: 'var/dir-to-file/', type: 'directory' },
  { name: 'var/dir-to-file/inner', body: 'inner\n' },
  { name: 'usr/', type: 'directory' },
  { name: 'usr/link', type: 'symlink', linkname: '../etc/keep' },
  { name: 'usr/masked/', type: 'directory' },
  { name: 'usr/masked/secret', body: 'old secret\n' },
]

async function imageLayers(dir: string, tag: string) {
  const layout = await Layout.open(dir)
  return { layout, image: await resolveImage(layout, { tag }, 'any') }
}

/** Every change kind of layer.md §Change Types, made to an unpacked rootfs. */
async function makeChanges(root: string): Promise<void> {
  await fsp.writeFile(path.join(root, 'etc/added'), 'new file\n')
  await fsp.mkdir(path.join(root, 'opt/newdir'), { recursive: true })
  await fsp.writeFile(path.join(root, 'opt/newdir/f'), 'in new dir\n')
  await fsp.writeFile(path.join(root, 'etc/modify'), 'new content, longer\n')
  await fsp.rm(path.join(root, 'etc/delete-me'))
  await fsp.chmod(path.join(root, 'etc/chmod-me'), 0o4755)
  await fsp.rm(path.join(root, 'etc/file-to-dir'))
  await fsp.mkdir(path.join(root, 'etc/file-to-dir'))
  await fsp.writeFile(path.join(root, 'etc/file-to-dir/child'), 'child\n')
  await fsp.rm(path.join(root, 'var/dir-to-delete'), { recursive: true })
  await fsp.rm(path.join(root, 'var/dir-to-file'), { recursive: true })
  await fsp.writeFile(path.join(root, 'var/dir-to-file'), 'now a file\n')
  await fsp.link(path.join(root, 'etc/keep'), path.join(root, 'etc/keep-hardlink'))
  await fsp.symlink('/etc/added', path.join(root, 'usr/abs-link'))
  await fsp.writeFile(path.join(root, 'usr/masked/secret'), 'changed secret\n')
}

test('repack with no change adds no layer and leaves the tag alone', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/true'] } })
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', `${img.dir}:latest`, bundle])
  const r = ladingOk(['repack', '--image', `${img.dir}:latest`, bundle])
  assert.match(r.stdout, /no changes/)
  const { image } = await imageLayers(img.dir, 'latest')
  assert.equal(image.manifestDescriptor.digest, img.manifest.digest)
  assert.equal(image.manifest.layers.length, 1)
})

test(
  'repack after add, modify, delete file, delete dir, chmod, type changes round-trips through lading, umoci and GNU tar',
  { timeout: 120_000 },
  async (t) => {
    const dir = tempDir(t)
    const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/true'] } })
    const bundle = path.join(dir, 'bundle')
    ladingOk(['unpack', '--image', `${img.dir}:latest`, bundle])
    const root = path.join(bundle, 'rootfs')
    await makeChanges(root)
    ladingOk([
      'repack',
      '--image',
      `${img.dir}:v2`,
      bundle,
      '--history.comment',
      'changes',
      '--history.author',
      'tester',
      '--history.created',
      '2025-02-03T04:05:06Z',
      '--mask-path',
      '/usr/masked',
    ])

    const { layout, image } = await imageLayers(img.dir, 'v2')
    assert.equal(image.manifest.layers.length, 2)
    assert.equal(image.config.rootfs.diff_ids.length, 2)
    const h = image.config.history!.at(-1)!
    assert.deepEqual({ ...h }, { created: '2025-02-03T04:05:06Z', created_by: 'lading repack', author: 'tester', comment: 'changes' })
    assert.equal(image.config.created, '2025-02-03T04:05:06Z')
    // The original tag still names the original image.
    assert.equal((await imageLayers(img.dir, 'latest')).image.manifestDescriptor.digest, img.manifest.digest)

    const tar = await layerTar(layout, image.manifest.layers[1]!)
    const names = await tarNames(tar)
    for (const want of [
      'etc/.wh.delete-me',
      'var/.wh.dir-to-delete',
      'etc/added',
      'etc/modify',
      'etc/chmod-me',
      'etc/file-to-dir/child',
      'var/dir-to-file',
      'opt/newdir/f',
    ]) {
      assert.ok(
        names.some((n) => n.replace(/\/$/, '') === want),
        `layer lacks ${want}: ${names.join(' ')}`,
      )
    }
    assert.ok(!names.some((n) => n.startsWith('usr/masked')), '--mask-path left the masked path out')
    assert.ok(!names.includes('usr/link'), 'unchanged entries are not in the layer')

    // Lading's unpack of the new image equals the edited rootfs (but for the masked path).
    const again = path.join(dir, 'again')
    ladingOk(['unpack', '--image', `${img.dir}:v2`, again])
    const skip = ['usr/masked']
    const edited = treeOf(root, { nlink: true, skip })
    const ours = treeOf(path.join(again, 'rootfs'), { nlink: true, skip })
    assert.deepEqual(diffTrees(ours, edited, ['re-unpacked', 'edited']), [])
    assert.equal(ours.get('etc/chmod-me')?.mode, 0o4755)
    assert.equal(ours.get('etc/keep')?.nlink, 2)

    // umoci unpacks the repacked image to the same tree.
    if (requireTool(t, 'umoci')) {
      const u = path.join(dir, 'umoci')
      runOk('umoci', ['unpack', '--image', `${img.dir}:v2`, u])
      assert.deepEqual(diffTrees(ours, treeOf(path.join(u, 'rootfs'), { nlink: true, skip }), ['lading', 'umoci']), [])
    }
    // GNU tar extracts the new layer alone to what Lading makes of it alone in an empty root
    // (tar knows no whiteouts: it writes the .wh. files, which Lading consumes).
    if (requireTool(t, 'tar')) {
      const gnu = path.join(dir, 'gnu')
      const mine = path.join(dir, 'mine')
      await fsp.mkdir(gnu)
      await fsp.mkdir(mine)
      const layerFile = path.join(dir, 'layer.tar')
      await fsp.writeFile(layerFile, tar)
      runOk('tar', ['--numeric-owner', '--same-permissions', '--xattrs', '--xattrs-include=*', '-xf', layerFile, '-C', gnu])
      await applyLayer(mine, Readable.from([tar]))
      const g = new Map([...treeOf(gnu)].filter(([p]) => !path.basename(p).startsWith('.wh.')))
      const m = treeOf(mine)
      g.delete('.')
      m.delete('.')
      assert.deepEqual(diffTrees(m, g, ['lading', 'gnu tar']), [])
    }
  },
)

test('repacked images pass lading validate and oci-image-tool validate', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/true'] } })
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', `${img.dir}:latest`, bundle])
  await makeChanges(path.join(bundle, 'rootfs'))
  ladingOk(['repack', '--image', `${img.dir}:latest`, bundle, '--compress', 'zstd'])
  ladingOk(['validate', '--image', `${img.dir}:latest`])
  ladingOk(['validate', '--layout', img.dir])
  const { layout, image } = await imageLayers(img.dir, 'latest')
  assert.equal(image.manifest.layers[1]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd')
  // The zstd layer unpacks again (lading reads what it wrote).
  ladingOk(['unpack', '--image', `${img.dir}:latest`, path.join(dir, 'again')])
  assert.equal(await fsp.readFile(path.join(dir, 'again/rootfs/etc/modify'), 'utf8'), 'new content, longer\n')
  if (requireTool(t, 'oci-image-tool')) {
    runOk('oci-image-tool', ['validate', '--type', 'manifest', layout.blobPath(image.manifestDescriptor.digest)])
    runOk('oci-image-tool', ['validate', '--type', 'config', layout.blobPath(image.manifest.config.digest)])
  }
})

test('--refresh-bundle: a later repack diffs against the new layer only', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/true'] } })
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', `${img.dir}:latest`, bundle])
  const root = path.join(bundle, 'rootfs')
  await fsp.writeFile(path.join(root, 'first'), '1\n')
  ladingOk(['repack', '--image', `${img.dir}:latest`, bundle, '--refresh-bundle', '--compress', 'none'])
  assert.match(ladingOk(['repack', '--image', `${img.dir}:latest`, bundle]).stdout, /no changes/)
  await fsp.writeFile(path.join(root, 'second'), '2\n')
  ladingOk(['repack', '--image', `${img.dir}:latest`, bundle])
  const { layout, image } = await imageLayers(img.dir, 'latest')
  assert.equal(image.manifest.layers.length, 3)
  assert.equal(image.manifest.layers[1]!.mediaType, 'application/vnd.oci.image.layer.v1.tar')
  assert.deepEqual(await tarNames(await layerTar(layout, image.manifest.layers[2]!)), ['second'])
  assert.deepEqual(await tarNames(await layerTar(layout, image.manifest.layers[1]!)), ['first'])
})

test('without --refresh-bundle a second repack is based on the unpacked image again', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/true'] } })
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', `${img.dir}:latest`, bundle])
  await fsp.writeFile(path.join(bundle, 'rootfs/first'), '1\n')
  ladingOk(['repack', '--image', `${img.dir}:latest`, bundle])
  ladingOk(['repack', '--image', `${img.dir}:latest`, bundle])
  const { image } = await imageLayers(img.dir, 'latest')
  assert.equal(image.manifest.layers.length, 2, 'base + one layer, not base + two')
})

test('--no-history adds no history entry and warns that history no longer lines up', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/true'] } })
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', `${img.dir}:latest`, bundle])
  await fsp.writeFile(path.join(bundle, 'rootfs/x'), 'x\n')
  const r = ladingOk(['repack', '--image', `${img.dir}:latest`, bundle, '--no-history'])
  assert.match(r.stderr, /warning: --no-history/)
  const { image } = await imageLayers(img.dir, 'latest')
  assert.equal(image.config.history?.length, 1)
  assert.equal(image.config.rootfs.diff_ids.length, 2)
})

test('repack refuses a bundle without lading state and a different layout', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/true'] } })
  const other = await initImage(path.join(dir, 'other'), { layers: [BASE], config: { Cmd: ['/bin/true'] } })
  await fsp.mkdir(path.join(dir, 'notabundle'))
  const r1 = lading(['repack', '--image', `${img.dir}:latest`, path.join(dir, 'notabundle')])
  assert.equal(r1.status, 1)
  assert.match(r1.stderr, /lading\.json: no bundle state/)
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', `${img.dir}:latest`, bundle])
  const r2 = lading(['repack', '--image', `${other.dir}:latest`, bundle])
  assert.equal(r2.status, 2)
  assert.match(r2.stderr, /repack into the same layout/)
})

test('repack of the whole Debian rootfs change set: umoci unpacks it to the same tree as lading', { timeout: 240_000 }, async (t) => {
  const fx = debianFixtures(t)
  if (!fx || !requireTool(t, 'umoci')) return
  const dir = tempDir(t)
  // Blobs are immutable and index.json is replaced by rename, so a hardlinked copy is safe.
  const layout = path.join(dir, 'layout')
  runOk('cp', ['-al', fx.layout, layout])
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', `${layout}:layered`, bundle])
  const root = path.join(bundle, 'rootfs')
  // Changes across the tree: delete a big directory, edit, add, chmod, type change.
  await fsp.rm(path.join(root, 'usr/share/locale'), { recursive: true, force: true })
  await fsp.appendFile(path.join(root, 'etc/passwd'), 'extra:x:2000:2000::/home/extra:/bin/sh\n')
  await fsp.mkdir(path.join(root, 'home/extra'))
  await fsp.chown(path.join(root, 'home/extra'), 2000, 2000)
  await fsp.chmod(path.join(root, 'etc/issue'), 0o600)
  await fsp.rm(path.join(root, 'etc/hostname'), { recursive: true })
  await fsp.symlink('/proc/sys/kernel/hostname', path.join(root, 'etc/hostname'))
  // Several MiB of new content, so the layer spans many 1 MiB gzip blocks (members, with the
  // libdeflate engine): the readers below must read past the first one.
  await fsp.mkdir(path.join(root, 'opt/many'), { recursive: true })
  const lines = Array.from({ length: 40_000 }, (_, i) => `line ${i} ${'abcdefghij'.repeat(i % 9)}\n`).join('')
  await fsp.writeFile(path.join(root, 'opt/big.txt'), lines.repeat(2))
  for (let i = 0; i < 50; i++) await fsp.writeFile(path.join(root, `opt/many/f${i}`), `${i}\n`.repeat(i * 100))
  ladingOk(['repack', '--image', `${layout}:repacked`, bundle])
  const img = await resolveImage(await Layout.open(layout), { tag: 'repacked' }, 'any')
  const blob = path.join(layout, 'blobs', 'sha256', img.manifest.layers.at(-1)!.digest.slice('sha256:'.length))
  const listed = runOk('tar', ['-tzf', blob]).stdout.split('\n')
  assert.ok(listed.includes('opt/big.txt') && listed.includes('opt/many/f49'), 'GNU tar lists entries from every gzip block')
  ladingOk(['validate', '--image', `${layout}:repacked`])
  const u = path.join(dir, 'umoci')
  runOk('umoci', ['unpack', '--image', `${layout}:repacked`, u])
  const l = path.join(dir, 'lading')
  ladingOk(['unpack', '--image', `${layout}:repacked`, l])
  const a = treeOf(path.join(l, 'rootfs'), { nlink: true })
  assert.deepEqual(diffTrees(a, treeOf(path.join(u, 'rootfs'), { nlink: true }), ['lading', 'umoci']), [])
  assert.deepEqual(diffTrees(a, treeOf(root, { nlink: true }), ['re-unpacked', 'edited']), [])
  assert.equal(a.get('usr/share/locale'), undefined)
  assert.equal(a.get('etc/hostname')?.type, 'symlink')
})

test('a Docker v2s2 image unpacks, and repack adds a layer with the Docker media type', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/true'] } })
  const { convertManifest } = await import('../../src/spec/convert.js')
  const { writeImage } = await import('../../src/store/image.js')
  const { layout, image } = await imageLayers(img.dir, 'latest')
  await writeImage(layout, { config: image.config, manifest: convertManifest(image.manifest, 'v2s2'), tag: 'docker' })
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', `${img.dir}:docker`, bundle])
  await fsp.writeFile(path.join(bundle, 'rootfs/etc/added'), 'a\n')
  ladingOk(['repack', '--image', `${img.dir}:docker`, bundle])
  const after = (await imageLayers(img.dir, 'docker')).image
  assert.equal(after.manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json')
  assert.deepEqual(
    after.manifest.layers.map((l) => l.mediaType),
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'application/vnd.docker.image.rootfs.diff.tar.gzip'],
  )
  assert.equal(after.manifest.config.mediaType, 'application/vnd.docker.container.image.v1+json')
  ladingOk(['validate', '--image', `${img.dir}:docker`])
})

test('the history author defaults to the image author; created_by defaults to "lading repack"', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/true'] }, extra: { author: 'Image Author <a@example.org>' } })
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', `${img.dir}:latest`, bundle])
  await fsp.writeFile(path.join(bundle, 'rootfs/x'), 'x\n')
  ladingOk(['repack', '--image', `${img.dir}:latest`, bundle])
  const h = (await imageLayers(img.dir, 'latest')).image.config.history!.at(-1)!
  assert.equal(h.author, 'Image Author <a@example.org>')
  assert.equal(h.created_by, 'lading repack')
  assert.ok(!Number.isNaN(Date.parse(h.created!)))
})

test('security: a tampered lading.json cannot point repack at a snapshot outside the bundle', async (t) => {
  const dir = tempDir(t)
  const img = await initImage(path.join(dir, 'img'), { layers: [BASE], config: { Cmd: ['/bin/true'] } })
  const bundle = path.join(dir, 'bundle')
  ladingOk(['unpack', '--image', `${img.dir}:latest`, bundle])
  const stateFile = path.join(bundle, 'lading.json')
  const state = JSON.parse(await fsp.readFile(stateFile, 'utf8'))
  for (const bad of ['../../etc/passwd', '/etc/passwd', '.hidden', '']) {
    await fsp.writeFile(stateFile, JSON.stringify({ ...state, snapshot: bad }))
    const r = lading(['repack', '--image', `${img.dir}:latest`, bundle])
    assert.equal(r.status, 1, bad)
    assert.match(r.stderr, /\/snapshot: missing or not a plain file name/, bad)
  }
  await fsp.writeFile(stateFile, JSON.stringify({ ...state, manifest: { ...state.manifest, digest: 'sha256:../../x' } }))
  assert.match(lading(['repack', '--image', `${img.dir}:latest`, bundle]).stderr, /\/manifest\/digest/)
  await fsp.writeFile(stateFile, '{"version": 1, "layout": ')
  assert.match(lading(['repack', '--image', `${img.dir}:latest`, bundle]).stderr, /lading\.json/)
})
