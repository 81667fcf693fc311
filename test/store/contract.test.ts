/**
 * The store contracts (test/store/contract/) run against every implementation: the OCI layout
 * on disk (src/store/fs/) and memory (src/store/memory/).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { digestOf, type Digest } from '../../src/digest/digest.js'
import { isLadingError } from '../../src/errors.js'
import { POOL_BLOCK_SIZE, poolStats } from '../../src/io/block-pool.js'
import { FsBlobStore, UPLOADS_DIR } from '../../src/store/fs/blob-store.js'
import { Layout } from '../../src/store/layout.js'
import { MemoryBlobStore } from '../../src/store/memory/blob-store.js'
import { MemoryIndexStore } from '../../src/store/memory/index-store.js'
import { blobStoreContract } from './contract/blob-store.js'
import { indexStoreContract } from './contract/index-store.js'
import { tempDir } from '../fixtures/temp.js'

blobStoreContract('fs', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-contract-' })
  const layout = await Layout.init(dir)
  return {
    store: layout.blobs,
    reopen: async () => (await Layout.open(dir)).blobs,
    async corrupt(d: Digest) {
      const file = layout.blobPath(d)
      const bytes = await fsp.readFile(file)
      bytes[bytes.length >> 1]! ^= 0xff
      await fsp.writeFile(file, bytes)
    },
  }
})

blobStoreContract('memory', async () => {
  const store = new MemoryBlobStore()
  return {
    store,
    async corrupt(d: Digest) {
      store.corrupt(d, 1000)
    },
    async cleanup() {},
  }
})

indexStoreContract('fs', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-contract-' })
  return { store: (await Layout.init(dir)).index }
})

indexStoreContract('memory', async () => ({ store: new MemoryIndexStore(), async cleanup() {} }))

test('fs upload sessions: a session whose data vanished (swept by another process) ends with NOT_FOUND, not a raw file error', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-contract-' })
  const layout = await Layout.init(dir)
  const uploads = new FsBlobStore(layout.dir).uploads
  const s = await uploads.start()
  await uploads.append(s.id, 0, Buffer.from('abc'))
  const sessions = path.join(dir, UPLOADS_DIR)
  assert.deepEqual(await fsp.readdir(sessions), [s.id], "the session is kept on disk, in the layout's sessions directory")
  await fsp.rm(path.join(sessions, s.id), { recursive: true })
  await assert.rejects(uploads.append(s.id, 3, Buffer.from('def')), (e) => isLadingError(e, 'NOT_FOUND'))
  await assert.rejects(uploads.status(s.id), (e) => isLadingError(e, 'NOT_FOUND'))
  await assert.rejects(uploads.commit(s.id, { digest: digestOf('abc') }), (e) => isLadingError(e, 'NOT_FOUND'))
})

test('fs upload sessions: session ids that could climb out of the sessions directory are unknown', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-contract-' })
  const outside = path.join(dir, 'outside')
  await fsp.mkdir(outside)
  await fsp.writeFile(path.join(outside, 'meta.json'), '{}')
  await fsp.writeFile(path.join(outside, 'data'), 'x')
  const uploads = new FsBlobStore(path.join(dir, 'layout'), { uploadsDir: path.join(dir, 'sessions') }).uploads
  for (const id of ['../outside', '..', '/etc', `${'0'.repeat(8)}-0000-0000-0000-000000000000/../../outside`]) {
    await assert.rejects(uploads.status(id), (e) => isLadingError(e, 'NOT_FOUND'), id)
    await assert.rejects(uploads.append(id, 0, Buffer.from('y')), (e) => isLadingError(e, 'NOT_FOUND'), id)
    await uploads.abort(id)
  }
  assert.equal(await fsp.readFile(path.join(outside, 'data'), 'utf8'), 'x', 'nothing outside was touched')
})

test('fs upload sessions: gc of a layout removes sessions idle a day (they outlive their writer), keeps younger ones', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-contract-' })
  const layout = await Layout.init(dir)
  const uploads = layout.blobs.uploads!
  const old = await uploads.start()
  await uploads.append(old.id, 0, Buffer.from('stale bytes'))
  const young = await uploads.start()
  const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000)
  await fsp.utimes(path.join(dir, UPLOADS_DIR, old.id, 'data'), twoDaysAgo, twoDaysAgo)
  const r = await layout.gc()
  assert.equal(r.tempFilesRemoved, 1)
  assert.equal(r.tempBytesRemoved, 'stale bytes'.length)
  await assert.rejects(uploads.status(old.id), (e) => isLadingError(e, 'NOT_FOUND'))
  assert.equal((await uploads.status(young.id)).size, 0)
})

test('fs upload sessions: commit and abort remove the whole session directory, a stray file in it too', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-contract-' })
  const layout = await Layout.init(dir)
  const uploads = layout.blobs.uploads!
  const sessions = path.join(dir, UPLOADS_DIR)
  const committed = await uploads.start('a')
  await uploads.append(committed.id, 0, Buffer.from('abc'))
  const aborted = await uploads.start('b')
  await uploads.append(aborted.id, 0, Buffer.from('def'))
  // Something a session's two files do not account for (a later version's file, say).
  const stray = await uploads.start('c')
  await fsp.writeFile(path.join(sessions, stray.id, 'extra'), 'x')
  assert.equal((await uploads.status(stray.id)).owner, 'c')
  assert.deepEqual(await uploads.commit(committed.id, { digest: digestOf('abc') }), { digest: digestOf('abc'), size: 3 })
  await uploads.abort(aborted.id)
  await uploads.abort(stray.id)
  assert.deepEqual(await fsp.readdir(sessions), [], 'no session directory is left')
  for (const id of [committed.id, aborted.id, stray.id]) await assert.rejects(uploads.status(id), (e) => isLadingError(e, 'NOT_FOUND'), id)
  assert.equal((await layout.readBlob({ digest: digestOf('abc') })).toString(), 'abc')
})

test('fs upload sessions: a body in many small chunks lands exactly, gathered into pooled 1 MiB writes', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-contract-' })
  const layout = await Layout.init(dir)
  const uploads = layout.blobs.uploads!
  const bytes = randomBytes(6 * POOL_BLOCK_SIZE + 777)
  const send = async (): Promise<void> => {
    const s = await uploads.start()
    // 16 KiB pieces (an HTTP body's reads), split across two chunks of the session at an odd offset.
    const cut = 3 * POOL_BLOCK_SIZE + 5
    const pieces = (b: Buffer): Readable =>
      Readable.from(Array.from({ length: Math.ceil(b.length / 16_384) }, (_, i) => b.subarray(i * 16_384, (i + 1) * 16_384)))
    assert.equal((await uploads.append(s.id, 0, pieces(bytes.subarray(0, cut)), cut)).size, cut)
    assert.equal((await uploads.append(s.id, cut, pieces(bytes.subarray(cut)))).size, bytes.length)
    assert.deepEqual(await uploads.commit(s.id, { digest: digestOf(bytes) }), { digest: digestOf(bytes), size: bytes.length })
  }
  const before = poolStats().outMade
  await send()
  assert.ok(poolStats().outMade > before, 'the pieces went to the file through pool blocks')
  const second = poolStats().outMade
  await send()
  await send()
  // Each upload is 7 blocks of writes; handed back by the writer, they serve the next uploads.
  assert.ok(poolStats().outMade - second < 7, `blocks made by two more uploads: ${poolStats().outMade - second}`)
  assert.ok((await layout.readBlob({ digest: digestOf(bytes) }, bytes.length)).equals(bytes))
})
