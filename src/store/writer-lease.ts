/**
 * Writer leases: how a writer tells gc "I am storing blobs that I will reference soon".
 *
 * The rule gc follows (README §gc; the registry server's online gc stands on it too):
 * - A writer (copy into oci:, new, config, insert, repack, a server upload) holds a lease on the
 *   layout from before its first blob until after its tag is written: a hidden file
 *   `.lading-writer-<pid>-<random>` in the layout root, holding pid, hostname and start time,
 *   refreshed (mtime) every LEASE_HEARTBEAT_MS while held.
 * - A blob a writer reuses instead of writing (it was there already) is touched (mtime = now),
 *   so it counts as young (Layout.touchBlob).
 * - gc keeps every unreferenced blob modified at or after the start of the oldest live lease
 *   (less LEASE_CLOCK_SLACK_MS for coarse mtimes), and those younger than its grace period.
 *   A lease is live while its file is refreshed and, on this host, its pid is alive; gc removes
 *   dead ones.
 * - Leases are taken under the index.json lock, which gc holds while it marks and sweeps: a
 *   writer starting during a gc waits for it, so nothing it is about to store or reuse is
 *   swept by that gc; a gc starting later sees the lease.
 * - The last line of defence is in the writers: a tag is written only after checking, under
 *   the index lock, that every blob it reaches exists (Layout.assertComplete), so whatever
 *   slips through (a gc without leases, another tool's gc) ends in a clear error, never in a
 *   tag naming missing blobs.
 */
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { isErrno } from '../errors.js'
import { processAlive } from '../io/fs.js'
import type { Layout } from './layout.js'

export const LEASE_PREFIX = '.lading-writer-'
/** How often a held lease's mtime is refreshed. */
export const LEASE_HEARTBEAT_MS = 60_000
/** A lease not refreshed for this long is dead (its writer hung, or runs on another host and died). */
export const LEASE_STALE_MS = 10 * 60_000
/** Blobs written this little before a lease started still count as the lease's (mtime granularity). */
export const LEASE_CLOCK_SLACK_MS = 2_000

export interface WriterLease {
  readonly path: string
  /** When the lease was taken (ms since the epoch). */
  readonly started: number
  /** Give the lease up; idempotent. */
  release(): Promise<void>
}

interface LeaseFile { pid: number; hostname: string; started: number }

/**
 * Take a writer lease on `layout` (under its index lock, so never while a gc sweeps). Release it
 * once the writer's tag is written or it gave up; a lease of a dead process is cleaned by gc.
 */
export async function acquireWriterLease(layout: Layout): Promise<WriterLease> {
  const file = path.join(layout.dir, `${LEASE_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`)
  const started = Date.now()
  const body: LeaseFile = { pid: process.pid, hostname: os.hostname(), started }
  await layout.withIndexLock(() => fsp.writeFile(file, JSON.stringify(body), { flag: 'wx', mode: 0o644 }))
  const heartbeat = setInterval(() => {
    const now = new Date()
    fsp.utimes(file, now, now).catch(() => {})
  }, LEASE_HEARTBEAT_MS)
  heartbeat.unref()
  let released = false
  return {
    path: file,
    started,
    async release() {
      if (released) return
      released = true
      clearInterval(heartbeat)
      await fsp.rm(file, { force: true })
    },
  }
}

/** Run `fn` holding a writer lease on `layout`; released however `fn` ends. */
export async function withWriterLease<T>(layout: Layout, fn: () => Promise<T>): Promise<T> {
  const lease = await acquireWriterLease(layout)
  try {
    return await fn()
  } finally {
    await lease.release()
  }
}

/**
 * The start of the oldest live lease on `layout` (undefined: none), removing dead leases
 * (`removeDead`: the caller holds the index lock, as gc does). Unreadable lease files younger
 * than LEASE_STALE_MS count as live from their mtime: better keep a blob than lose one.
 */
export async function oldestLiveLease(layout: Layout, opts: { removeDead?: boolean } = {}): Promise<number | undefined> {
  let names: string[]
  try {
    names = await fsp.readdir(layout.dir)
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined
    throw e
  }
  const now = Date.now()
  const host = os.hostname()
  let oldest: number | undefined
  for (const name of names) {
    if (!name.startsWith(LEASE_PREFIX)) continue
    const file = path.join(layout.dir, name)
    let st
    try {
      st = await fsp.lstat(file)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) continue
      throw e
    }
    if (!st.isFile()) continue
    let info: Partial<LeaseFile> = {}
    try {
      info = JSON.parse(await fsp.readFile(file, 'utf8')) as Partial<LeaseFile>
    } catch {
      // Being written, or garbled: judged by its mtime alone.
    }
    const dead = now - st.mtimeMs > LEASE_STALE_MS ||
      (info.hostname === host && typeof info.pid === 'number' && !processAlive(info.pid))
    if (dead) {
      if (opts.removeDead) await fsp.rm(file, { force: true })
      continue
    }
    const started = typeof info.started === 'number' && Number.isFinite(info.started) ? Math.min(info.started, st.mtimeMs) : st.mtimeMs
    if (oldest === undefined || started < oldest) oldest = started
  }
  return oldest
}
