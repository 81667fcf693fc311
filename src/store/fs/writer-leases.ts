/**
 * Writer leases on disk (the rule is src/store/writer-lease.ts's): a hidden file
 * `.lading-writer-<pid>-<random>` in the layout root, holding pid, hostname and start time,
 * refreshed (mtime) every LEASE_HEARTBEAT_MS while held. A lease is live while its file is
 * refreshed and, on this host, its pid is alive.
 */
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { isErrno } from '../../errors.js'
import { processAlive } from '../../io/fs.js'
import type { IndexStore, WriterLease, WriterLeases } from '../index-store.js'

export const LEASE_PREFIX = '.lading-writer-'
/** How often a held lease's mtime is refreshed. */
export const LEASE_HEARTBEAT_MS = 60_000
/** A lease not refreshed for this long is dead (its writer hung, or runs on another host and died). */
export const LEASE_STALE_MS = 10 * 60_000

interface LeaseFile {
  pid: number
  hostname: string
  started: number
}

export class FsWriterLeases implements WriterLeases {
  readonly #dir: string
  readonly #index: IndexStore

  constructor(dir: string, index: IndexStore) {
    this.#dir = dir
    this.#index = index
  }

  async acquire(): Promise<WriterLease> {
    const file = path.join(this.#dir, `${LEASE_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`)
    const started = Date.now()
    const body: LeaseFile = { pid: process.pid, hostname: os.hostname(), started }
    await this.#index.withLock(() => fsp.writeFile(file, JSON.stringify(body), { flag: 'wx', mode: 0o644 }))
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

  /** Unreadable lease files younger than LEASE_STALE_MS count as live from their mtime: better keep a blob than lose one. */
  async oldestLive(opts: { removeDead?: boolean } = {}): Promise<number | undefined> {
    let names: string[]
    try {
      names = await fsp.readdir(this.#dir)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined
      throw e
    }
    const now = Date.now()
    const host = os.hostname()
    let oldest: number | undefined
    for (const name of names) {
      if (!name.startsWith(LEASE_PREFIX)) continue
      const file = path.join(this.#dir, name)
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
      const dead = now - st.mtimeMs > LEASE_STALE_MS || (info.hostname === host && typeof info.pid === 'number' && !processAlive(info.pid))
      if (dead) {
        if (opts.removeDead) await fsp.rm(file, { force: true })
        continue
      }
      const started = typeof info.started === 'number' && Number.isFinite(info.started) ? Math.min(info.started, st.mtimeMs) : st.mtimeMs
      if (oldest === undefined || started < oldest) oldest = started
    }
    return oldest
  }
}
