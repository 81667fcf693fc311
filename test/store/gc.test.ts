import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { digestOf } from '../../src/digest/digest.js'
import { isLadingError } from '../../src/errors.js'
import { Layout } from '../../src/store/layout.js'
import { markReachable } from '../../src/store/gc.js'
import { MediaType } from '../../src/spec/media-types.js'
import type { Manifest } from '../../src/spec/types.js'
import { putImage, putIndex, tempLayout, withPlatform } from '../fixtures/image.js'

async function blobs(layout: Layout): Promise<string[]> {
  const out: string[] = []
  for await (const b of layout.listBlobs()) out.push(b.digest)
  return out.sort()
}

test('gc marks through nested indexes, manifests, configs and layers and sweeps the rest', async (t) => {
  const layout = await tempLayout(t)
  const a = await putImage(layout, { layers: 2, platform: { os: 'linux', architecture: 'amd64' } })
  const b = await putImage(layout, { layers: 1, platform: { os: 'linux', architecture: 'arm64' }, docker: true })
  const list = await putIndex(layout, [withPlatform(b.manifest, { os: 'linux', architecture: 'arm64' })], { docker: true })
  const outer = await putIndex(layout, [a.manifest, list])
  await layout.setTag('keep', outer)
  const dropped = await putImage(layout, { layers: 3 })
  const loose = await layout.putBlob(Buffer.from('loose'))
  const keep = [outer, list, a.manifest, a.config, ...a.layers, b.manifest, b.config, ...b.layers].map((d) => d.digest)
  const gone = [dropped.manifest, dropped.config, ...dropped.layers].map((d) => d.digest).concat(loose.digest)

  const r = await layout.gc()
  assert.deepEqual(r.removed.map((x) => x.digest).sort(), [...gone].sort())
  assert.deepEqual(await blobs(layout), [...keep].sort())
  assert.ok(r.removed.every((x) => x.size > 0))
  // Idempotent.
  assert.deepEqual((await layout.gc()).removed, [])
})

test('gc keeps referrers (manifests whose subject is reachable), transitively, and drops referrers of unreachable images', async (t) => {
  const layout = await tempLayout(t)
  const img = await putImage(layout, { layers: 1 })
  await layout.setTag('t', img.manifest)
  const sig = await putImage(layout, { layers: 1, subject: img.manifest })
  const sigOfSig = await putImage(layout, { layers: 1, subject: sig.manifest })
  const orphan = await putImage(layout, { layers: 1 })
  const orphanSig = await putImage(layout, { layers: 1, subject: orphan.manifest })
  // An index referrer, too (image-index.md §subject).
  const idxRef = await layout.putManifest(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [], subject: img.manifest })),
    MediaType.OciIndex,
  )

  const marked = await markReachable(layout)
  for (const d of [img.manifest, sig.manifest, sig.config, ...sig.layers, sigOfSig.manifest, sigOfSig.layers[0]!, idxRef])
    assert.ok(marked.has(d.digest), d.digest)
  const r = await layout.gc()
  const removed = new Set(r.removed.map((x) => x.digest))
  for (const d of [orphan.manifest, orphanSig.manifest, ...orphanSig.layers]) assert.ok(removed.has(d.digest), d.digest)
  for (const d of [sig.manifest, sigOfSig.manifest, idxRef]) assert.ok(await layout.hasBlob(d.digest))
})

test('gc keeps a tagged manifest whose subject is absent from the layout', async (t) => {
  const layout = await tempLayout(t)
  const img = await putImage(layout, { layers: 1, subject: { mediaType: MediaType.OciManifest, digest: digestOf('elsewhere'), size: 9 } })
  await layout.setTag('t', img.manifest)
  assert.deepEqual((await layout.gc()).removed, [])
})

test('gc aborts and removes nothing when a reachable manifest is missing or corrupt', async (t) => {
  const layout = await tempLayout(t)
  const img = await putImage(layout, { layers: 1 })
  await layout.setTag('t', img.manifest)
  const loose = await layout.putBlob(Buffer.from('loose'))
  const m = JSON.parse((await layout.readBlob(img.manifest)).toString()) as Manifest
  await fsp.writeFile(layout.blobPath(img.manifest.digest), JSON.stringify({ ...m, layers: [] }).padEnd(img.manifest.size))
  await assert.rejects(layout.gc(), (e: unknown) => isLadingError(e) && /gc aborted, nothing removed/.test((e as Error).message))
  await layout.deleteBlob(img.manifest.digest)
  await assert.rejects(layout.gc(), (e: unknown) => isLadingError(e, 'BLOB_UNKNOWN') && /gc aborted/.test((e as Error).message))
  assert.ok(await layout.hasBlob(loose.digest))
  assert.ok(await layout.hasBlob(img.config.digest))
})

test("gc keeps a live writer's temp file and removes a dead writer's", async (t) => {
  const layout = await tempLayout(t)
  const alg = path.join(layout.dir, 'blobs', 'sha256')
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' })
  try {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()
    const liveName = `.${'a'.repeat(64)}.tmp-${live.pid}-0011aabbccdd`
    const deadName = `.${'b'.repeat(64)}.tmp-${dead}-0011aabbccdd`
    const ownName = `.upload.tmp-${process.pid}-0011aabbccdd`
    const deadIndexTemp = `.index.json.tmp-${dead}-0011aabbccdd`
    await fsp.writeFile(path.join(alg, liveName), 'writing')
    await fsp.writeFile(path.join(alg, deadName), 'crashed!')
    await fsp.writeFile(path.join(alg, ownName), 'mine')
    await fsp.writeFile(path.join(layout.dir, deadIndexTemp), '{')
    const r = await layout.gc()
    assert.equal(r.tempFilesRemoved, 2)
    assert.equal(r.tempBytesRemoved, 9)
    const left = await fsp.readdir(alg)
    assert.ok(left.includes(liveName))
    assert.ok(left.includes(ownName))
    assert.ok(!left.includes(deadName))
    assert.ok(!(await fsp.readdir(layout.dir)).includes(deadIndexTemp))
  } finally {
    live.kill('SIGKILL')
  }
})

test('gc --keep-recent (minAgeMs) keeps young unreferenced blobs', async (ctx) => {
  const layout = await tempLayout(ctx)
  const young = await layout.putBlob(Buffer.from('young'))
  const old = await layout.putBlob(Buffer.from('old'))
  const t = new Date(Date.now() - 3_600_000)
  await fsp.utimes(layout.blobPath(old.digest), t, t)
  const r = await layout.gc({ minAgeMs: 600_000 })
  assert.deepEqual(
    r.removed.map((x) => x.digest),
    [old.digest],
  )
  assert.ok(await layout.hasBlob(young.digest))
})
