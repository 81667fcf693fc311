/**
 * A cross-process lock on a file path, for read-modify-write of shared files (index.json).
 *
 * Contract:
 * - The lock is a file created with O_CREAT|O_EXCL holding `{pid, hostname, time, token}`;
 *   only one process can create it, on local filesystems and on NFSv3+.
 * - While `fn` runs, the holder touches the lock file (mtime) every `staleMs / 4`, so a lock whose
 *   mtime is older than `staleMs` has no live holder even if its pid was reused or it lives on
 *   another host.
 * - A lock is stale (and is broken) when its holder is on this host and its pid is dead, or
 *   its mtime is older than `staleMs`. Judging and breaking are two steps, and the lock may
 *   change hands between them (its holder releases it and exits, so its pid is dead, and another
 *   waiter takes the lock). So breaking happens under a second lock, `<lock>.break` (O_EXCL
 *   too, held for a few system calls), and only if the lock file is still the one judged: the
 *   same inode with the same holder's token. A lock whose holder is dead is removed by nobody
 *   but a breaker, and breakers take turns, so nothing can replace it between that check and
 *   the removal. (Renaming the file aside and putting a live lock back, as this module did
 *   before, let a third process create the lock in between: two holders at once, and a lost
 *   tag, seen with eight concurrent `lading tag`.) One case is left: a lock judged stale by its
 *   mtime alone belongs to a holder that is alive but has not run for `staleMs`; if it wakes and
 *   releases in the instant between the check and the removal, and a third process takes the
 *   lock, that lock is removed.
 * - The breaker lock holds `{pid, hostname, time, token}` too. One left by a breaker that died
 *   (its pid is dead on this host; from another host, older than BREAKER_STALE_MS; unreadable
 *   past the grace) is removed if it is still the same file (inode and token), and only a
 *   breaker's own token lets it remove its breaker lock.
 * - Waiting is bounded: after `timeoutMs` the caller gets LOCKED naming the holder.
 * - Release removes the lock only if it still carries our token.
 */
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { LadingError, isErrno } from '../errors.js'
import { processAlive } from './fs.js'

export interface LockOptions {
  /** How long to wait for the lock before failing with LOCKED (default 30 s). */
  timeoutMs?: number
  /** A lock not refreshed for this long is stale whoever holds it (default 60 s). */
  staleMs?: number
}

export interface LockInfo {
  pid: number
  hostname: string
  time: string
  token: string
}

const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_STALE_MS = 60_000
/** A holder writes its info right after O_EXCL create; an empty/garbled lock younger than this is still being written. */
const UNREADABLE_GRACE_MS = 2_000

/** Run `fn` while holding the lock at `lockPath`; the lock is released however `fn` ends. */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const staleMs = opts.staleMs ?? DEFAULT_STALE_MS
  const token = randomBytes(12).toString('hex')
  await acquire(lockPath, token, timeoutMs, staleMs)
  const heartbeat = setInterval(
    () => {
      const now = new Date()
      fsp.utimes(lockPath, now, now).catch(() => {})
    },
    Math.max(10, Math.floor(staleMs / 4)),
  )
  heartbeat.unref()
  try {
    return await fn()
  } finally {
    clearInterval(heartbeat)
    await release(lockPath, token)
  }
}

/** Read a lock file's holder; undefined if absent or not (yet) readable. */
export async function readLockInfo(lockPath: string): Promise<LockInfo | undefined> {
  let text: string
  try {
    text = await fsp.readFile(lockPath, 'utf8')
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined
    throw e
  }
  try {
    const v = JSON.parse(text) as Partial<LockInfo>
    if (typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.time === 'string' && typeof v.token === 'string') {
      return v as LockInfo
    }
  } catch {
    // fall through: being written, or garbage
  }
  return undefined
}

async function acquire(lockPath: string, token: string, timeoutMs: number, staleMs: number): Promise<void> {
  const start = Date.now()
  let delay = 2
  for (;;) {
    if (await tryCreate(lockPath, token)) return
    await breakIfStale(lockPath, staleMs)
    if (Date.now() - start >= timeoutMs) {
      const holder = await readLockInfo(lockPath).catch(() => undefined)
      const who = holder ? `pid ${holder.pid} on ${holder.hostname} since ${holder.time}` : 'another process'
      throw new LadingError(
        'LOCKED',
        `${lockPath}: locked by ${who}; gave up after ${(timeoutMs / 1000).toFixed(1)} s (remove the file if no such process is running)`,
      )
    }
    // Jittered exponential backoff, capped, so eight waiters do not retry in lockstep.
    await sleep(delay + Math.random() * delay)
    delay = Math.min(delay * 2, 50)
  }
}

async function tryCreate(lockPath: string, token: string): Promise<boolean> {
  let fh
  try {
    fh = await fsp.open(lockPath, 'wx', 0o644)
  } catch (e) {
    if (isErrno(e, 'EEXIST')) return false
    throw e
  }
  try {
    const info: LockInfo = { pid: process.pid, hostname: os.hostname(), time: new Date().toISOString(), token }
    await fh.writeFile(JSON.stringify(info) + '\n')
  } catch (e) {
    await fh.close().catch(() => {})
    await fsp.rm(lockPath, { force: true })
    throw e
  } finally {
    await fh.close().catch(() => {})
  }
  return true
}

/** The breaker lock's name beside `lockPath` (Layout.init knows it is not layout content). */
export function breakerPath(lockPath: string): string {
  return `${lockPath}.break`
}

/** A breaker lock from another host older than this belongs to a breaker that died (a live one holds it for milliseconds). */
const BREAKER_STALE_MS = 5_000

/** The lock file as found: its inode and its holder's token (undefined while unreadable). */
interface Judged {
  dev: number
  ino: number
  token: string | undefined
}

/** The lock file if it is stale, as found; undefined if absent or live. */
async function judge(lockPath: string, staleMs: number): Promise<Judged | undefined> {
  let st
  try {
    st = await fsp.stat(lockPath)
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined
    throw e
  }
  const age = Date.now() - st.mtimeMs
  const info = await readLockInfo(lockPath)
  let stale: boolean
  if (age > staleMs) stale = true
  else if (info === undefined) stale = age > UNREADABLE_GRACE_MS
  else stale = info.hostname === os.hostname() && !processAlive(info.pid)
  return stale ? { dev: st.dev, ino: st.ino, token: info?.token } : undefined
}

/**
 * Break the lock at `lockPath` if it is stale. Exported for its tests, whose `afterJudge` runs
 * between judging and breaking: the window in which the lock may change hands.
 */
export async function breakIfStale(lockPath: string, staleMs: number, afterJudge?: () => Promise<void>): Promise<void> {
  const judged = await judge(lockPath, staleMs)
  if (!judged) return
  await afterJudge?.()
  const breaker = breakerPath(lockPath)
  const token = randomBytes(12).toString('hex')
  if (!(await tryCreate(breaker, token))) {
    // Another waiter is breaking it; the caller tries again after its backoff.
    await clearDeadBreaker(breaker)
    return
  }
  try {
    // Still the lock judged stale? Same inode (numbers are reused once a file is gone) and
    // same token (undefined stays undefined only for a lock whose holder never wrote it).
    let st
    try {
      st = await fsp.stat(lockPath)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return
      throw e
    }
    if (st.dev !== judged.dev || st.ino !== judged.ino) return
    if ((await readLockInfo(lockPath))?.token !== judged.token) return
    await fsp.rm(lockPath, { force: true })
  } finally {
    await release(breaker, token)
  }
}

/** Remove a breaker lock whose breaker died (see the module comment), if it is still that file. */
async function clearDeadBreaker(breaker: string): Promise<void> {
  const st = await fsp.stat(breaker).catch(() => undefined)
  if (!st) return
  const info = await readLockInfo(breaker)
  const age = Date.now() - st.mtimeMs
  const dead = info === undefined ? age > UNREADABLE_GRACE_MS : info.hostname === os.hostname() ? !processAlive(info.pid) : age > BREAKER_STALE_MS
  if (!dead) return
  // A waiter that cleared it first may have made its own since.
  const now = await fsp.stat(breaker).catch(() => undefined)
  if (!now || now.ino !== st.ino || now.dev !== st.dev || (await readLockInfo(breaker))?.token !== info?.token) return
  await fsp.rm(breaker, { force: true })
}

async function release(lockPath: string, token: string): Promise<void> {
  const info = await readLockInfo(lockPath).catch(() => undefined)
  // Someone judged us stale and took over: their lock is not ours to remove.
  if (info?.token !== token) return
  await fsp.rm(lockPath, { force: true })
}
