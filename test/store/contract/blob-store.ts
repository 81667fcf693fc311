/**
 * The blob-store contract (src/store/blob-store.ts), one suite that every implementation runs:
 * `blobStoreContract(name, factory)` registers node:test cases. An implementation's test file
 * calls it with a factory that makes a fresh, empty store and can corrupt a stored blob behind
 * the store's back (what a failing disk or a hostile layout does).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { digestOf, type Digest } from '../../../src/digest/digest.js'
import { isLadingError } from '../../../src/errors.js'
import type { BlobStore } from '../../../src/store/blob-store.js'
import { drainStream, withFresh } from './with-fresh.js'
import type { AfterHook } from '../../fixtures/temp.js'

export interface BlobStoreUnderTest {
  store: BlobStore
  /** Flip one byte of a stored blob (same size) without the store knowing. */
  corrupt(digest: Digest): Promise<void>
  /**
   * A new store over the same place, as a restarted process opens it; absent when the
   * implementation keeps nothing beyond the object (then `uploads.durable` must be false).
   */
  reopen?(): Promise<BlobStore>
  /** What the test context's after hook does not undo (a temp dir is removed by it). */
  cleanup?(): Promise<void>
}

async function listed(store: BlobStore): Promise<string[]> {
  const out: string[] = []
  for await (const b of store.list()) out.push(b.digest)
  return out
}

/** A stream that yields `bytes` in several chunks (the store must not rely on one). */
function chunked(bytes: Buffer, size = 1000): Readable {
  const parts: Buffer[] = []
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size))
  return Readable.from(parts)
}

export function blobStoreContract(name: string, factory: (hook: AfterHook) => Promise<BlobStoreUnderTest>): void {
  const withStore = withFresh(factory)

  test(
    `${name} blob store: put with a wrong digest leaves nothing visible`,
    withStore(async ({ store }) => {
      const bytes = randomBytes(5000)
      const wrong = digestOf(randomBytes(10))
      await assert.rejects(store.put(chunked(bytes), { digest: wrong }), (e) => isLadingError(e, 'DIGEST_MISMATCH'))
      await assert.rejects(store.put(bytes, { digest: wrong }), (e) => isLadingError(e, 'DIGEST_MISMATCH'))
      assert.equal(await store.stat(wrong), undefined)
      assert.equal(await store.stat(digestOf(bytes)), undefined)
      assert.deepEqual(await listed(store), [])
      await assert.rejects(store.get({ digest: wrong }), (e) => isLadingError(e, 'BLOB_UNKNOWN'))
    }),
  )

  test(
    `${name} blob store: put with a wrong size leaves nothing visible`,
    withStore(async ({ store }) => {
      const bytes = randomBytes(3000)
      await assert.rejects(store.put(chunked(bytes), { digest: digestOf(bytes), size: 2999 }))
      assert.equal(await store.stat(digestOf(bytes)), undefined)
      assert.deepEqual(await listed(store), [])
    }),
  )

  test(
    `${name} blob store: put is idempotent and returns the digest and size`,
    withStore(async ({ store }) => {
      const bytes = randomBytes(4096)
      const d = digestOf(bytes)
      assert.deepEqual(await store.put(chunked(bytes)), { digest: d, size: 4096 })
      assert.deepEqual(await store.put(bytes, { digest: d }), { digest: d, size: 4096 })
      // An existing blob is kept: the body of a second put with its digest is not read.
      let read = false
      const body = new Readable({
        read() {
          read = true
          this.push(null)
        },
      })
      assert.deepEqual(await store.put(body, { digest: d, size: 4096 }), { digest: d, size: 4096 })
      assert.equal(read, false)
      assert.deepEqual(await listed(store), [d])
      assert.deepEqual(await store.read({ digest: d, size: 4096 }), bytes)
    }),
  )

  test(
    `${name} blob store: get verifies: a flipped byte errors before the stream ends`,
    withStore(async ({ store, corrupt }) => {
      const bytes = randomBytes(300_000)
      const { digest, size } = await store.put(chunked(bytes, 65536))
      const good = await drainStream(await store.get({ digest, size }))
      assert.equal(good.error, undefined)
      assert.equal(good.ended, true)
      assert.deepEqual(good.bytes, bytes)
      await corrupt(digest)
      const bad = await drainStream(await store.get({ digest, size }))
      assert.ok(isLadingError(bad.error, 'DIGEST_MISMATCH'), `expected DIGEST_MISMATCH, got ${String(bad.error)}`)
      assert.equal(bad.ended, false, "'end' must never be seen for bad bytes")
      await assert.rejects(store.read({ digest, size }, 1 << 20), (e) => isLadingError(e, 'DIGEST_MISMATCH'))
    }),
  )

  test(
    `${name} blob store: get and read refuse a size that differs from the descriptor's`,
    withStore(async ({ store }) => {
      const bytes = randomBytes(100)
      const { digest } = await store.put(bytes)
      await assert.rejects(
        async () =>
          drainStream(await store.get({ digest, size: 99 })).then((r) => {
            if (r.error) throw r.error
          }),
        (e) => isLadingError(e, 'SIZE_MISMATCH'),
      )
      await assert.rejects(store.read({ digest, size: 101 }), (e) => isLadingError(e, 'SIZE_MISMATCH'))
      await assert.rejects(store.read({ digest }, 50), (e) => isLadingError(e, 'SIZE_LIMIT'))
    }),
  )

  test(
    `${name} blob store: stat, list and delete`,
    withStore(async ({ store }) => {
      const a = randomBytes(10)
      const b = randomBytes(20)
      const da = (await store.put(a)).digest
      const db = (await store.put(chunked(b, 7))).digest
      const st = await store.stat(da)
      assert.equal(st?.size, 10)
      assert.ok(st !== undefined && Math.abs(st.modifiedMs - Date.now()) < 60_000, 'modifiedMs is a recent time')
      assert.deepEqual((await listed(store)).sort(), [da, db].sort())
      await store.delete(da)
      await store.delete(da) // absent is not an error
      assert.equal(await store.stat(da), undefined)
      assert.deepEqual(await listed(store), [db])
      await assert.rejects(store.read({ digest: da }), (e) => isLadingError(e, 'BLOB_UNKNOWN'))
    }),
  )

  test(
    `${name} blob store: touch makes a blob young again`,
    withStore(async ({ store }) => {
      const { digest } = await store.put(randomBytes(10))
      const before = (await store.stat(digest))!.modifiedMs
      await new Promise((r) => setTimeout(r, 30))
      await store.touch(digest)
      assert.ok((await store.stat(digest))!.modifiedMs > before)
      await store.touch(digestOf('absent')) // not an error
    }),
  )

  test(
    `${name} blob store: concurrent puts of one blob store it once`,
    withStore(async ({ store }) => {
      const bytes = randomBytes(100_000)
      const results = await Promise.all(Array.from({ length: 6 }, () => store.put(chunked(bytes, 4096))))
      for (const r of results) assert.deepEqual(r, { digest: digestOf(bytes), size: bytes.length })
      assert.deepEqual(await listed(store), [digestOf(bytes)])
    }),
  )

  test(
    `${name} blob store: upload sessions (append at offset, status, commit, abort)`,
    withStore(async ({ store }) => {
      const uploads = store.uploads
      if (!uploads) return // optional: this implementation has none
      const bytes = randomBytes(70_000)
      const d = digestOf(bytes)
      const s = await uploads.start()
      assert.equal(s.size, 0)
      assert.equal((await uploads.append(s.id, 0, bytes.subarray(0, 30_000))).size, 30_000)
      // Out of order (a gap, or an overlap) is refused and appends nothing.
      await assert.rejects(uploads.append(s.id, 40_000, bytes.subarray(40_000)), (e) => isLadingError(e, 'CONFLICT'))
      await assert.rejects(uploads.append(s.id, 10, bytes.subarray(10, 20)), (e) => isLadingError(e, 'CONFLICT'))
      assert.equal((await uploads.status(s.id)).size, 30_000)
      assert.equal(await store.stat(d), undefined, 'nothing is visible before commit')
      await uploads.append(s.id, 30_000, chunked(bytes.subarray(30_000), 5000))
      assert.equal((await uploads.status(s.id)).size, bytes.length)
      assert.deepEqual(await uploads.commit(s.id, { digest: d }), { digest: d, size: bytes.length })
      assert.deepEqual(await store.read({ digest: d }, 1 << 20), bytes)
      await assert.rejects(uploads.status(s.id), (e) => isLadingError(e, 'NOT_FOUND'), 'the session ends at commit')
    }),
  )

  test(
    `${name} blob store: an upload committed with a wrong digest leaves nothing`,
    withStore(async ({ store }) => {
      const uploads = store.uploads
      if (!uploads) return
      const bytes = randomBytes(5000)
      const s = await uploads.start()
      await uploads.append(s.id, 0, bytes)
      const wrong = digestOf(randomBytes(8))
      await assert.rejects(uploads.commit(s.id, { digest: wrong }), (e) => isLadingError(e, 'DIGEST_MISMATCH'))
      assert.equal(await store.stat(wrong), undefined)
      assert.equal(await store.stat(digestOf(bytes)), undefined)
      assert.deepEqual(await listed(store), [])
      await assert.rejects(uploads.append(s.id, 5000, bytes), (e) => isLadingError(e, 'NOT_FOUND'), 'the session ended')
    }),
  )

  test(
    `${name} blob store: an aborted upload leaves nothing`,
    withStore(async ({ store }) => {
      const uploads = store.uploads
      if (!uploads) return
      const bytes = randomBytes(5000)
      const s = await uploads.start()
      await uploads.append(s.id, 0, bytes)
      await uploads.abort(s.id)
      await uploads.abort(s.id) // unknown: not an error
      await assert.rejects(uploads.commit(s.id, { digest: digestOf(bytes) }), (e) => isLadingError(e, 'NOT_FOUND'))
      assert.deepEqual(await listed(store), [])
    }),
  )

  test(
    `${name} blob store: a session survives a new store instance (restart)`,
    withStore(async ({ store, reopen }) => {
      const uploads = store.uploads
      if (!uploads) return
      if (!reopen) {
        assert.equal(uploads.durable, false, 'an implementation that cannot be reopened must not claim durable sessions')
        return
      }
      assert.equal(uploads.durable, true)
      const bytes = randomBytes(50_000)
      const d = digestOf(bytes)
      const s = await uploads.start('team/app')
      await uploads.append(s.id, 0, bytes.subarray(0, 20_000))
      const gone = await uploads.start()
      await uploads.append(gone.id, 0, bytes.subarray(0, 10))
      const mismatched = await uploads.start()
      await uploads.append(mismatched.id, 0, bytes.subarray(0, 10))

      const again = (await reopen()).uploads!
      const st = await again.status(s.id)
      assert.equal(st.size, 20_000, 'the size reached before the restart')
      assert.equal(st.owner, 'team/app')
      assert.deepEqual((await again.list()).map((x) => x.id).sort(), [s.id, gone.id, mismatched.id].sort())
      await assert.rejects(again.append(s.id, 10_000, bytes.subarray(10_000)), (e) => isLadingError(e, 'CONFLICT'), 'still in order only')
      // A chunk that breaks off midway is cut back to where it started.
      const broken = Readable.from(
        (function* () {
          yield bytes.subarray(20_000, 25_000)
          throw new Error('client gone')
        })(),
      )
      await assert.rejects(again.append(s.id, 20_000, broken))
      assert.equal((await again.status(s.id)).size, 20_000)
      // A chunk that disagrees with its declared length appends nothing.
      await assert.rejects(again.append(s.id, 20_000, bytes.subarray(20_000, 21_000), 999), (e) => isLadingError(e, 'SIZE_MISMATCH'))
      assert.equal((await again.status(s.id)).size, 20_000)
      assert.equal((await again.append(s.id, undefined, chunked(bytes.subarray(20_000), 7000), 30_000)).size, bytes.length)
      assert.equal(await store.stat(d), undefined, 'nothing is visible before commit')
      assert.deepEqual(await again.commit(s.id, { digest: d, size: bytes.length }), { digest: d, size: bytes.length })
      assert.deepEqual(await store.read({ digest: d }, 1 << 20), bytes, 'the first instance sees the blob too')
      // Nothing becomes a blob before it verifies, after a restart too.
      await assert.rejects(again.commit(mismatched.id, { digest: d }), (e) => isLadingError(e, 'DIGEST_MISMATCH'))
      await assert.rejects(again.status(mismatched.id), (e) => isLadingError(e, 'NOT_FOUND'))
      await again.abort(gone.id)
      await assert.rejects(uploads.status(gone.id), (e) => isLadingError(e, 'NOT_FOUND'), 'aborted for every instance')
      assert.deepEqual(await listed(store), [d])
    }),
  )

  test(
    `${name} blob store: expired upload sessions are swept, young ones stay`,
    withStore(async ({ store }) => {
      const uploads = store.uploads
      if (!uploads) return
      const old = await uploads.start()
      await uploads.append(old.id, 0, Buffer.from('old'))
      const young = await uploads.start()
      const now = Date.now()
      assert.deepEqual(await uploads.sweep(60_000, now), { sessions: 0, bytes: 0 })
      assert.deepEqual(await uploads.sweep(0, now + 120_000), { sessions: 2, bytes: 3 })
      await assert.rejects(uploads.status(old.id), (e) => isLadingError(e, 'NOT_FOUND'))
      await assert.rejects(uploads.status(young.id), (e) => isLadingError(e, 'NOT_FOUND'))
      assert.deepEqual(await uploads.list(), [])
      assert.deepEqual(await listed(store), [])
    }),
  )
}
