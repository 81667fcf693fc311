/**
 * The store contracts (test/store/contract/) run against every implementation: the OCI layout
 * on disk (src/store/fs/) and memory (src/store/memory/).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import type { Digest } from '../../src/digest/digest.js'
import { isLadingError } from '../../src/errors.js'
import { FsBlobStore } from '../../src/store/fs/blob-store.js'
import { Layout } from '../../src/store/layout.js'
import { MemoryBlobStore } from '../../src/store/memory/blob-store.js'
import { MemoryIndexStore } from '../../src/store/memory/index-store.js'
import { blobStoreContract } from './contract/blob-store.js'
import { indexStoreContract } from './contract/index-store.js'
import { tempDir } from './store-fixtures.js'

blobStoreContract('fs', async () => {
  const { dir, cleanup } = await tempDir('lading-contract-')
  const layout = await Layout.init(dir)
  return {
    store: layout.blobs,
    async corrupt(d: Digest) {
      const file = layout.blobPath(d)
      const bytes = await fsp.readFile(file)
      bytes[bytes.length >> 1]! ^= 0xff
      await fsp.writeFile(file, bytes)
    },
    cleanup,
  }
})

blobStoreContract('memory', async () => {
  const store = new MemoryBlobStore()
  return { store, async corrupt(d: Digest) { store.corrupt(d, 1000) }, async cleanup() {} }
})

indexStoreContract('fs', async () => {
  const { dir, cleanup } = await tempDir('lading-contract-')
  return { store: (await Layout.init(dir)).index, cleanup }
})

indexStoreContract('memory', async () => ({ store: new MemoryIndexStore(), async cleanup() {} }))

test('fs upload sessions: a session whose data gc swept ends with NOT_FOUND, not a raw file error', async (t) => {
  const { dir, cleanup } = await tempDir('lading-contract-')
  t.after(cleanup)
  const layout = await Layout.init(dir)
  const uploads = new FsBlobStore(layout.dir).uploads
  const s = await uploads.start()
  await uploads.append(s.id, 0, Buffer.from('abc'))
  const temps = await layout.listTempFiles()
  assert.equal(temps.length, 1, 'the session is one temp file, which gc sweeps once its writer is gone')
  await fsp.rm(temps[0]!.path)
  await assert.rejects(uploads.append(s.id, 3, Buffer.from('def')), (e) => isLadingError(e, 'NOT_FOUND'))
  await assert.rejects(uploads.status(s.id), (e) => isLadingError(e, 'NOT_FOUND'))
})
