/**
 * Layouts written by other tools: umoci (init, new, tag, config) and skopeo (`copy oci: oci:`
 * of several images, and of a multi-platform index, into one layout). Lading must list the
 * same tags, resolve every image, verify every blob and gc nothing that is reachable; and the
 * other tools must still read a layout Lading has tagged and collected.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Digest } from '../../src/digest/digest.js'
import { Layout } from '../../src/store/layout.js'
import { resolveImage } from '../../src/store/resolve.js'
import { writeImage } from '../../src/store/image.js'
import { MediaType } from '../../src/spec/media-types.js'
import type { Descriptor, ImageConfig, Platform } from '../../src/spec/types.js'
import { lading, ladingOk, runOk } from '../helpers/cli.js'
import { requireTool } from '../helpers/tools.js'
import { putIndex, withPlatform, verifyEveryBlob } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

async function blobList(layout: Layout): Promise<string[]> {
  const out: string[] = []
  for await (const b of layout.listBlobs()) out.push(b.digest)
  return out.sort()
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '')
}

/** A real image: one gzip tar layer made by GNU tar from a directory holding `content`. */
async function realImage(layout: Layout, work: string, content: string, platform: Platform, tag?: string): Promise<Descriptor> {
  const root = path.join(
    work,
    `root-${createHash('sha256')
      .update(content + platform.architecture)
      .digest('hex')
      .slice(0, 8)}`,
  )
  await fsp.mkdir(root, { recursive: true })
  await fsp.writeFile(path.join(root, 'hello.txt'), content)
  const tar = execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', root, '-cf', '-', '.'])
  const gz = execFileSync('gzip', ['-n', '-c'], { input: tar })
  const layer = await layout.putBlob(gz)
  const config: ImageConfig = {
    ...platform,
    created: '2024-01-01T00:00:00Z',
    rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(tar).digest('hex')}` as Digest] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: `echo ${content} > /hello.txt` }],
    config: { Env: ['PATH=/bin'] },
  }
  return writeImage(layout, {
    config,
    manifest: {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: layer.digest, size: 0 },
      layers: [{ mediaType: MediaType.OciLayerGzip, ...layer }],
    },
    tag,
  })
}

test('layouts written by umoci: lading ls agrees with umoci ls, every image resolves, gc keeps what umoci needs', async (t) => {
  if (!requireTool(t, 'umoci')) return
  const tmpDir = tempDir(t)
  const dir = path.join(tmpDir, 'umoci')
  runOk('umoci', ['init', '--layout', dir])
  runOk('umoci', ['new', '--image', `${dir}:a`])
  runOk('umoci', ['tag', '--image', `${dir}:a`, 'b'])
  runOk('umoci', ['new', '--image', `${dir}:c`])
  runOk('umoci', ['config', '--image', `${dir}:c`, '--config.env', 'X=1', '--config.cmd', 'sh'])
  runOk('umoci', ['config', '--image', `${dir}:c`, '--config.user', '1000', '--tag', 'd'])
  runOk('umoci', ['tag', '--image', `${dir}:a`, 'v1.0.0-vendor.0'])
  const umociTags = lines(runOk('umoci', ['ls', '--layout', dir]).stdout)
  assert.deepEqual(lines(ladingOk(['ls', '--layout', dir]).stdout), umociTags)
  assert.ok(umociTags.length >= 5)

  const layout = await Layout.open(dir)
  for (const tag of umociTags) {
    const img = await resolveImage(layout, { tag })
    assert.equal(img.config.os, 'linux', tag)
  }
  assert.deepEqual((await resolveImage(layout, { tag: 'c' })).config.config?.Env?.includes('X=1'), true)
  assert.equal((await resolveImage(layout, { tag: 'd' })).config.config?.User, '1000')
  await verifyEveryBlob(layout)

  // umoci config left the old manifests/configs of c behind: lading gc removes them, and
  // umoci gc afterwards finds nothing more to remove (lading kept exactly what umoci needs).
  const gc = ladingOk(['gc', '--layout', dir])
  assert.match(gc.stdout, /removed [1-9]\d* blobs?/)
  const afterLading = await blobList(layout)
  runOk('umoci', ['gc', '--layout', dir])
  assert.deepEqual(await blobList(layout), afterLading)

  // umoci reads what lading did to its layout.
  ladingOk(['tag', '--image', `${dir}:d`, 'from-lading'])
  ladingOk(['rm', '--image', `${dir}:b`])
  assert.deepEqual(lines(runOk('umoci', ['ls', '--layout', dir]).stdout), lines(ladingOk(['ls', '--layout', dir]).stdout))
  assert.ok(lines(runOk('umoci', ['ls', '--layout', dir]).stdout).includes('from-lading'))
  runOk('umoci', ['stat', '--image', `${dir}:from-lading`])
})

test('layouts written by skopeo copy (several images and a multi-platform index in one layout) are read, resolved and kept by gc', async (t) => {
  if (!requireTool(t, 'skopeo')) return
  const tmpDir = tempDir(t)
  const src = await Layout.init(path.join(tmpDir, 'src'))
  const amd64 = { os: 'linux', architecture: 'amd64' }
  const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' }
  await realImage(src, tmpDir, 'one', amd64, 'one')
  await realImage(src, tmpDir, 'two', amd64, 'two')
  const a = await realImage(src, tmpDir, 'multi', amd64)
  const b = await realImage(src, tmpDir, 'multi', arm64)
  await src.setTag('multi', await putIndex(src, [withPlatform(a, amd64), withPlatform(b, arm64)]))

  const dst = path.join(tmpDir, 'dst')
  const skopeo = (from: string, to: string, ...flags: string[]) =>
    runOk('skopeo', ['--insecure-policy', 'copy', ...flags, `oci:${src.dir}:${from}`, `oci:${dst}:${to}`])
  skopeo('one', 'first')
  skopeo('two', 'second')
  skopeo('one', 'first-again')
  skopeo('multi', 'multi', '--all')
  // Docker media types inside an OCI layout.
  skopeo('two', 'docker', '--format', 'v2s2')

  const layout = await Layout.open(dst)
  const tags = lines(ladingOk(['ls', '--layout', dst]).stdout)
  assert.deepEqual([...tags].sort(), ['docker', 'first', 'first-again', 'multi', 'second'])
  const docker = await resolveImage(layout, { tag: 'docker' })
  assert.equal(docker.manifestDescriptor.mediaType, MediaType.DockerManifest)
  assert.equal(docker.manifest.config.mediaType, MediaType.DockerConfig)
  assert.equal(docker.manifest.layers[0]?.mediaType, MediaType.DockerLayerGzip)
  assert.deepEqual(docker.config.rootfs.diff_ids, (await resolveImage(layout, { tag: 'second' })).config.rootfs.diff_ids)
  if (requireTool(t, 'umoci')) assert.deepEqual(lines(runOk('umoci', ['ls', '--layout', dst]).stdout), tags)
  assert.equal(
    (await resolveImage(layout, { tag: 'first' })).manifestDescriptor.digest,
    (await resolveImage(layout, { tag: 'first-again' })).manifestDescriptor.digest,
  )
  assert.equal((await resolveImage(layout, { tag: 'multi' }, arm64)).config.architecture, 'arm64')
  assert.equal((await resolveImage(layout, { tag: 'multi' }, amd64)).config.architecture, 'amd64')
  assert.ok((await resolveImage(layout, { tag: 'multi' }, arm64)).path.length >= 2)
  const n = await verifyEveryBlob(layout)
  assert.ok(n >= 9)
  const before = await blobList(layout)
  const gc = await layout.gc()
  assert.deepEqual(gc.removed, [], 'everything skopeo wrote is reachable')
  assert.deepEqual(await blobList(layout), before)

  // skopeo reads the layout after lading tagged it.
  ladingOk(['tag', '--image', `${dst}:second`, 'tagged-by-lading'])
  const inspect = JSON.parse(runOk('skopeo', ['inspect', '--raw', `oci:${dst}:tagged-by-lading`]).stdout)
  assert.equal(inspect.mediaType, MediaType.OciManifest)
  const r = lading(['rm', '--image', `${dst}:nope`])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^lading: tag "nope" not found in layout/)
})

test('index.json, manifests and configs written by the store pass oci-image-tool validate', async (t) => {
  if (!requireTool(t, 'oci-image-tool')) return
  const tmpDir = tempDir(t)
  const layout = await Layout.init(path.join(tmpDir, 'l'))
  const amd64 = { os: 'linux', architecture: 'amd64' }
  const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' }
  const a = await realImage(layout, tmpDir, 'a', amd64, 'a')
  const b = await realImage(layout, tmpDir, 'b', arm64)
  await layout.setTag('multi', await putIndex(layout, [withPlatform(a, amd64), withPlatform(b, arm64)]))
  runOk('oci-image-tool', ['validate', '--type', 'imageIndex', path.join(layout.dir, 'index.json')])
  for (const tag of ['a', 'multi']) {
    const img = await resolveImage(layout, { tag }, tag === 'multi' ? arm64 : undefined)
    for (const [type, digest] of [
      ['manifest', img.manifestDescriptor.digest],
      ['config', img.manifest.config.digest],
    ] as const) {
      runOk('oci-image-tool', ['validate', '--type', type, layout.blobPath(digest)])
    }
    for (const d of img.path.slice(0, -1)) runOk('oci-image-tool', ['validate', '--type', 'imageIndex', layout.blobPath(d.digest)])
  }
  const v = ladingOk(['validate', '--layout', layout.dir])
  assert.match(v.stdout + v.stderr, /valid/)
})
