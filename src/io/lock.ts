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
 *   its mtime is older than `staleMs`. Breaking renames the lock file aside and checks the inode
 *   is the one judged stale, so two waiters cannot both break the lock and then break each other's.
 * - Waiting is bounded: after `timeoutMs` the caller gets LOCKED naming the holder.
 * - Release removes the lock only if it still carries our token.
 */
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { LadingError, isErrno } from '../errors.js'
import { processAlive, tempPathFor } from './fs.js'

export interface LockOptions {
  /** How long to wait for the lock before failing with LOCKED (default 30 s). */
  timeoutMs?: number
  /** A lock not refreshed for this long is stale whoever holds it (default 60 s). */
  staleMs?: number
}

export interface LockInfo { pid: number; hostname: string; time: string; token: string }

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
  const heartbeat = setInterval(() => {
    const now = new Date()
    fsp.utimes(lockPath, now, now).catch(() => {})
  }, Math.max(10, Math.floor(staleMs / 4)))
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
      throw new LadingError('LOCKED', `${lockPath}: locked by ${who}; gave up after ${(timeoutMs / 1000).toFixed(1)} s (remove the file if no such process is running)`)
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

async function breakIfStale(lockPath: string, staleMs: number): Promise<void> {
  let st
  try {
    st = await fsp.stat(lockPath)
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return
    throw e
  }
  const age = Date.now() - st.mtimeMs
  const info = await readLockInfo(lockPath)
  let stale: boolean
  if (age > staleMs) stale = true
  else if (info === undefined) stale = age > UNREADABLE_GRACE_MS
  else stale = info.hostname === os.hostname() && !processAlive(info.pid)
  if (!stale) return

  // Rename aside, then make sure we moved the very file we judged stale (same inode). If a
  // live holder's lock got there in between, put it back with link(2), which fails rather
  // than overwrite a lock someone created meanwhile.
  // A temp name (src/io/fs.ts), so gc sweeps it should we die before removing it.
  const aside = tempPathFor(lockPath)
  try {
    await fsp.rename(lockPath, aside)
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return
    throw e
  }
  try {
    const moved = await fsp.stat(aside)
    if (moved.ino !== st.ino || moved.dev !== st.dev) {
      await fsp.link(aside, lockPath).catch(() => {})
    }
  } finally {
    await fsp.rm(aside, { force: true })
  }
}

async function release(lockPath: string, token: string): Promise<void> {
  const info = await readLockInfo(lockPath).catch(() => undefined)
  // Someone judged us stale and took over: their lock is not ours to remove.
  if (info?.token !== token) return
  await fsp.rm(lockPath, { force: true })
}
