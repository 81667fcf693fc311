/**
 * A Layout composed of the in-memory stores does what a layout on disk does: tag, resolve,
 * unpack layers (ResolvedImage carries a blob reader, not a directory), gc with the writer-lease
 * rule, and referrers, all through the store interfaces.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { isLadingError } from '../../src/errors.js'
import { applyImageLayers } from '../../src/bundle/unpack.js'
import { collectGarbage } from '../../src/store/gc.js'
import { memoryLayout } from '../../src/store/memory/memory-layout.js'
import { listReferrers } from '../../src/store/referrers.js'
import { resolveImage } from '../../src/store/resolve.js'
import { withWriterLease } from '../../src/store/writer-lease.js'
import { MediaType } from '../../src/spec/media-types.js'
import { putImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

test('memory layout: tag, resolve and unpack an image with no directory behind it', async (t) => {
  const layout = memoryLayout()
  const img = await putImage(layout, { layers: 2 })
  await layout.setTag('v1', img.manifest)
  assert.deepEqual(
    (await layout.listTags()).map((t) => t.tag),
    ['v1'],
  )
  const resolved = await resolveImage(layout, { tag: 'v1' })
  assert.equal(resolved.manifest.layers.length, 2)
  const rootfs = tempDir(t, { prefix: 'lading-memory-' })
  await applyImageLayers(resolved, rootfs)
  assert.equal((await readFile(path.join(rootfs, 'file-0'))).length, 200)
  assert.equal((await readFile(path.join(rootfs, 'file-1'))).length, 201)
})

test('memory layout: a tag naming missing blobs is refused (assertComplete through the stores)', async () => {
  const layout = memoryLayout()
  const img = await putImage(layout, { layers: 1 })
  await layout.blobs.delete(img.layers[0]!.digest)
  await assert.rejects(layout.setTag('broken', img.manifest), (e) => isLadingError(e, 'BLOB_UNKNOWN'))
  assert.deepEqual(await layout.listTags(), [])
})

test('memory layout: gc removes unreferenced blobs, keeps tagged ones, and keeps what a live writer lease stored', async () => {
  const layout = memoryLayout()
  const kept = await putImage(layout, { layers: 1 })
  await layout.setTag('kept', kept.manifest)
  await withWriterLease(layout, async () => {
    const pending = await putImage(layout, { layers: 1 })
    const during = await collectGarbage(layout)
    assert.deepEqual(during.removed, [], 'blobs of a writer holding a lease survive a gc')
    assert.ok(await layout.hasBlob(pending.manifest.digest))
  })
  const after = await collectGarbage(layout)
  assert.equal(after.removed.length, 3, 'once the lease is released the untagged image (config, layer, manifest) goes')
  assert.ok(await layout.hasBlob(kept.manifest.digest))
  assert.ok(await layout.hasBlob(kept.layers[0]!.digest))
})

test('memory layout: referrers are found and kept by gc through the blob store', async () => {
  const layout = memoryLayout()
  const subject = await putImage(layout, { layers: 1 })
  await layout.setTag('s', subject.manifest)
  const sig = await putImage(layout, { layers: 1, subject: subject.manifest })
  const found = await listReferrers(layout.blobs, subject.manifest.digest)
  assert.deepEqual(
    found.map((d) => d.digest),
    [sig.manifest.digest],
  )
  assert.equal(found[0]!.mediaType, MediaType.OciManifest)
  assert.deepEqual((await collectGarbage(layout)).removed, [])
})
