/**
 * A Node program uses Lading through its package name, as an installed dependency would:
 * create a layout, write an image, change its config, resolve it, add a layer, validate it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import os from 'node:os'
import path from 'node:path'

test("the package's own name resolves to the public API and drives a whole edit", async () => {
  const lading = await import('lading')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lading-api-'))
  try {
    const layout = await lading.Layout.init(dir)
    const config = lading.newImageConfig({ os: 'linux', architecture: 'amd64' }, '2024-01-01T00:00:00Z')
    const manifest = {
      schemaVersion: 2 as const,
      mediaType: lading.MediaType.OciManifest,
      config: { mediaType: lading.MediaType.OciConfig, digest: lading.digestOf('{}'), size: 2 },
      layers: [],
    }
    await lading.writeImage(layout, { config, manifest, tag: 'v1' })
    // A layer from a directory-free tar stream: one file, gzip-compressed by the library.
    const tar = lading.writeTar([{ entry: { path: 'hello.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtimeNs: 0n }, content: { data: Buffer.from('hi\n') } }])
    const { VerifyingStream } = lading
    const diff = new VerifyingStream({})
    const gz = lading.compress(tar.pipe(diff), 'gzip')
    const blob = await layout.putBlob(gz as Readable)
    const img = await lading.resolveImage(layout, { tag: 'v1' }, 'any')
    const edited = lading.editConfig(img.config, { env: ['A=1'], history: { created_by: 'test' } })
    edited.rootfs = { ...edited.rootfs, diff_ids: [...edited.rootfs.diff_ids, diff.result!.digest] }
    const m2 = { ...img.manifest, layers: [{ mediaType: lading.MediaType.OciLayerGzip, digest: blob.digest, size: blob.size }] }
    await lading.writeImage(layout, { config: edited, manifest: m2, tag: 'v2' })
    const v2 = await lading.resolveImage(layout, { tag: 'v2' }, 'any')
    assert.deepEqual(v2.config.config?.Env, ['A=1'])
    assert.equal(v2.manifest.layers.length, 1)
    const result = await lading.validateLayout(dir)
    assert.deepEqual(result.problems, [])
    assert.deepEqual((await layout.listTags()).map((t) => t.tag).sort(), ['v1', 'v2'])
    assert.throws(() => lading.parseDigest('sha256:XYZ'), (e) => lading.isLadingError(e, 'DIGEST_INVALID'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
