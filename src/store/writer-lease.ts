/**
 * Writer leases: how a writer tells gc "I am storing blobs that I will reference soon".
 *
 * The rule gc follows (README §gc; the registry server's online gc stands on it too):
 * - A writer (copy into oci:, new, config, insert, repack, a server upload) holds a lease on the
 *   store from before its first blob until after its tag is written (WriterLeases in
 *   src/store/index-store.ts; on disk a hidden file in the layout root, src/store/fs/writer-leases.ts).
 * - A blob a writer reuses instead of writing (it was there already) is touched (mtime = now),
 *   so it counts as young (BlobStore.touch).
 * - gc keeps every unreferenced blob modified at or after the start of the oldest live lease
 *   (less LEASE_CLOCK_SLACK_MS for coarse mtimes), and those younger than its grace period.
 *   A lease is live while its file is refreshed and, on this host, its pid is alive; gc removes
 *   dead ones.
 * - Leases are taken under the index.json lock, which gc holds while it marks and sweeps: a
 *   writer starting during a gc waits for it, so nothing it is about to store or reuse is
 *   swept by that gc; a gc starting later sees the lease.
 * - The last line of defence is in the writers: a tag is written only after checking, under
 *   the index lock, that every blob it reaches exists (assertComplete, src/store/closure.ts), so whatever
 *   slips through (a gc without leases, another tool's gc) ends in a clear error, never in a
 *   tag naming missing blobs.
 */
import type { Stores, WriterLease } from './index-store.js'

export { LEASE_PREFIX, LEASE_HEARTBEAT_MS, LEASE_STALE_MS } from './fs/writer-leases.js'
export type { WriterLease } from './index-store.js'
/** Blobs written this little before a lease started still count as the lease's (mtime granularity). */
export const LEASE_CLOCK_SLACK_MS = 2_000

/**
 * Take a writer lease on the store (under its index lock, so never while a gc sweeps). Release it
 * once the writer's tag is written or it gave up; a lease of a dead process is cleaned by gc.
 */
export async function acquireWriterLease(store: Pick<Stores, 'leases'>): Promise<WriterLease> {
  return store.leases.acquire()
}

/** Run `fn` holding a writer lease on the store; released however `fn` ends. */
export async function withWriterLease<T>(store: Pick<Stores, 'leases'>, fn: () => Promise<T>): Promise<T> {
  const lease = await acquireWriterLease(store)
  try {
    return await fn()
  } finally {
    await lease.release()
  }
}

/** The start of the oldest live lease on the store (undefined: none); `removeDead` under the index lock. */
export async function oldestLiveLease(store: Pick<Stores, 'leases'>, opts: { removeDead?: boolean } = {}): Promise<number | undefined> {
  return store.leases.oldestLive(opts)
}
