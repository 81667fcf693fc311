/**
 * The index store: the image index that names a store's images (index.json of an OCI layout,
 * image-layout.md §index.json), and the writer leases gc honours.
 *
 * Contracts (test/store/contract/index-store.ts checks them):
 * - `update(fn)` is the only way to change the index: read-modify-write under the store's lock,
 *   so concurrent updates (across processes, for the file system) never lose each other's work;
 *   if `fn` throws, or returns an index that does not parse, nothing is written.
 * - `read` returns an index parsed strictly (it MUST be an image index).
 * - `withLock(fn)` runs `fn` holding the same lock without writing (gc holds it while it sweeps,
 *   writers take their lease and check completeness under it).
 */
import type { Index } from '../spec/types.js'
import type { BlobStore } from './blob-store.js'

export interface IndexStore {
  read(): Promise<Index>
  update(fn: (index: Index) => Index | Promise<Index>, opts?: { timeoutMs?: number }): Promise<Index>
  withLock<T>(fn: () => Promise<T>, opts?: { timeoutMs?: number }): Promise<T>
}

export interface WriterLease {
  readonly path: string
  /** When the lease was taken (ms since the epoch). */
  readonly started: number
  /** Give the lease up; idempotent. */
  release(): Promise<void>
}

/** Where writers record "I am storing blobs I will tag soon" (src/store/writer-lease.ts states the rule). */
export interface WriterLeases {
  /** Take a lease, under the index lock (so never while a gc sweeps). */
  acquire(): Promise<WriterLease>
  /** The start of the oldest live lease (undefined: none); `removeDead` when the caller holds the index lock. */
  oldestLive(opts?: { removeDead?: boolean }): Promise<number | undefined>
}

/** A store as gc, referrers and the closure check see it: blobs, index, leases, and a name for messages. */
export interface Stores {
  readonly name: string
  readonly blobs: BlobStore
  readonly index: IndexStore
  readonly leases: WriterLeases
}
