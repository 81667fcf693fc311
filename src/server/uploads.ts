/**
 * Blob upload sessions (distribution-spec §Pushing blobs), kept on disk so that they survive a
 * restart of the server: `DIR/<id>/meta.json` (repository, start time) and `DIR/<id>/data` (the
 * bytes received so far, in order). The session's offset is the data file's size.
 *
 * Contracts:
 * - A chunk is all or nothing: if its body breaks off (client gone, wrong length, timeout) the
 *   data file is truncated back to the offset before it, so the status a client reads after a
 *   failure is where it may resume.
 * - Chunks of one session are applied one at a time (a per-session queue); a chunk must start at
 *   the current offset (416 otherwise, distribution-spec §Pushing a blob in chunks).
 * - The digest is computed while the bytes arrive (a running hash, copied before each chunk so a
 *   failed chunk does not spoil it). After a restart the running hash is gone and commit hashes
 *   the data file once instead.
 * - commit verifies the whole upload against the client's digest (size too, when given), fsyncs
 *   the data file and hands it to the caller to rename into the content store: nothing becomes a
 *   blob before it verified.
 * - Session ids are random UUIDs, checked against their grammar before they touch a path.
 */
import { randomUUID, type Hash } from 'node:crypto'
import { createReadStream, promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { digestAlgorithm, newHash, type Algorithm, type Digest } from '../digest/digest.js'
import { LadingError, isErrno } from '../errors.js'
import { PooledFileWriter } from '../io/block-pool.js'

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export interface UploadStatus { id: string; repository: string; size: number; startedMs: number; lastActiveMs: number }

interface Live {
  /** Running sha256 over bytes [0, hashed). */
  hash: Hash | undefined
  hashed: number
  /** The data file was fsynced at this size (by the last append's writer). */
  syncedSize?: number
  queue: Promise<unknown>
}

export class UploadSessions {
  readonly dir: string
  readonly #live = new Map<string, Live>()

  constructor(dir: string) {
    this.dir = dir
  }

  static isId(id: string): boolean {
    return UUID_RE.test(id)
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true })
  }

  async create(repository: string): Promise<string> {
    const id = randomUUID()
    const d = path.join(this.dir, id)
    await fsp.mkdir(d)
    await fsp.writeFile(path.join(d, 'data'), '')
    // A plain write into the fresh directory: a meta.json cut short by a crash does not parse,
    // and `status` then treats the session as unknown (the client starts a new one; gc sweeps it).
    await fsp.writeFile(path.join(d, 'meta.json'), JSON.stringify({ repository, startedMs: Date.now() }))
    this.#live.set(id, { hash: newHash('sha256'), hashed: 0, queue: Promise.resolve() })
    return id
  }

  /** The session, or undefined when unknown (or belonging to another repository). */
  async status(id: string, repository: string): Promise<UploadStatus | undefined> {
    if (!UploadSessions.isId(id)) return undefined
    const d = path.join(this.dir, id)
    let meta: { repository?: unknown; startedMs?: unknown }
    try {
      meta = JSON.parse(await fsp.readFile(path.join(d, 'meta.json'), 'utf8')) as typeof meta
    } catch (e) {
      if (isErrno(e, 'ENOENT') || e instanceof SyntaxError) return undefined
      throw e
    }
    if (meta.repository !== repository) return undefined
    let st
    try {
      st = await fsp.lstat(path.join(d, 'data'))
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined
      throw e
    }
    if (!st.isFile()) return undefined
    return { id, repository, size: st.size, startedMs: Number(meta.startedMs) || 0, lastActiveMs: st.mtimeMs }
  }

  /**
   * Append `body` at offset `start` (the current size when undefined: a streamed PATCH).
   * `length` is the chunk's declared length (Content-Length), checked against what arrived.
   * Returns the new size. Errors: RANGE (416) for a wrong start, SIZE_INVALID for a length
   * that disagrees, BLOB_UPLOAD_UNKNOWN when the session is gone.
   */
  async append(id: string, repository: string, body: Readable, start: number | undefined, length: number | undefined): Promise<number> {
    return this.#serial(id, async () => {
      const st = await this.status(id, repository)
      if (!st) throw new LadingError('NOT_FOUND', `upload ${id} unknown`)
      if (start !== undefined && start !== st.size) {
        body.resume()
        throw Object.assign(new LadingError('CONFLICT', `chunk starts at ${start}, but the upload has ${st.size} bytes`), { rangeSize: st.size })
      }
      const live = this.#liveOf(id)
      const hash = live.hash && live.hashed === st.size ? live.hash.copy() : undefined
      const file = path.join(this.dir, id, 'data')
      let received = 0
      // Counts and hashes on the way to the file; PooledFileWriter batches the writes (one
      // writev per queued batch) and fsyncs before it finishes, so an acknowledged chunk is on disk.
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          received += chunk.length
          if (length !== undefined && received > length) {
            cb(new LadingError('SIZE_MISMATCH', `chunk is longer than its Content-Length ${length}`))
            return
          }
          hash?.update(chunk)
          cb(null, chunk)
        },
      })
      let ok = false
      try {
        // Append mode: operations on a session are serial, so the end of the file is `st.size`.
        await pipeline(body, tap, new PooledFileWriter(await fsp.open(file, 'a'), 8 * 1024 * 1024))
        if (length !== undefined && received !== length) {
          throw new LadingError('SIZE_MISMATCH', `chunk has ${received} bytes, but its Content-Length says ${length}`)
        }
        ok = true
      } finally {
        if (!ok) await fsp.truncate(file, st.size).catch(() => {})
      }
      const pos = st.size + received
      if (hash) { live.hash = hash; live.hashed = pos } else { live.hash = undefined }
      live.syncedSize = pos
      return pos
    })
  }

  /**
   * Verify the whole upload against `digest` and return the fsynced data file, for the caller
   * to rename into the content store (and then `remove` the session). DIGEST_MISMATCH (the
   * session is removed: its bytes can never become that blob) or NOT_FOUND.
   */
  async commit(id: string, repository: string, digest: Digest): Promise<{ file: string; size: number }> {
    return this.#serial(id, async () => {
      const st = await this.status(id, repository)
      if (!st) throw new LadingError('NOT_FOUND', `upload ${id} unknown`)
      const file = path.join(this.dir, id, 'data')
      const alg: Algorithm = digestAlgorithm(digest)
      const live = this.#live.get(id)
      let actual: string
      if (alg === 'sha256' && live?.hash && live.hashed === st.size) {
        actual = `sha256:${live.hash.copy().digest('hex')}`
      } else {
        const h = newHash(alg)
        await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), new Writable({ write(c: Buffer, _e, cb) { h.update(c); cb() } }))
        actual = `${alg}:${h.digest('hex')}`
      }
      if (actual !== digest) {
        await this.#removeNow(id)
        throw new LadingError('DIGEST_MISMATCH', `upload ${id}: digest mismatch: the client said ${digest}, the ${st.size} bytes received are ${actual}`)
      }
      // The last append's writer fsynced the file at this size already (PooledFileWriter).
      if (live?.syncedSize !== st.size) {
        const fh = await fsp.open(file, 'r')
        try { await fh.sync() } finally { await fh.close() }
      }
      return { file, size: st.size }
    })
  }

  /** Remove a session (cancel, or after commit); absent is not an error. */
  async remove(id: string): Promise<void> {
    if (!UploadSessions.isId(id)) return
    await this.#serial(id, () => this.#removeNow(id))
    this.#live.delete(id)
  }

  /** Every session on disk, for the sweeper and /metrics. */
  async list(): Promise<Array<{ id: string; lastActiveMs: number; size: number }>> {
    let names: string[]
    try {
      names = await fsp.readdir(this.dir)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return []
      throw e
    }
    const out: Array<{ id: string; lastActiveMs: number; size: number }> = []
    for (const id of names) {
      if (!UploadSessions.isId(id)) continue
      const st = await fsp.lstat(path.join(this.dir, id, 'data')).catch(() => undefined)
      const dirSt = st ?? await fsp.lstat(path.join(this.dir, id)).catch(() => undefined)
      if (!dirSt) continue
      out.push({ id, lastActiveMs: dirSt.mtimeMs, size: st?.size ?? 0 })
    }
    return out
  }

  /** Remove sessions idle longer than `maxIdleMs` (none in use right now). Returns how many. */
  async sweep(maxIdleMs: number, now = Date.now()): Promise<number> {
    let n = 0
    for (const s of await this.list()) {
      if (now - s.lastActiveMs < maxIdleMs) continue
      await this.remove(s.id)
      n++
    }
    return n
  }

  #liveOf(id: string): Live {
    let l = this.#live.get(id)
    if (!l) {
      l = { hash: undefined, hashed: 0, queue: Promise.resolve() }
      this.#live.set(id, l)
    }
    return l
  }

  async #removeNow(id: string): Promise<void> {
    await fsp.rm(path.join(this.dir, id), { recursive: true, force: true })
  }

  /** Run `fn` after every earlier operation on session `id` has settled. */
  #serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const live = this.#liveOf(id)
    const next = live.queue.then(fn, fn)
    live.queue = next.catch(() => {})
    return next
  }
}
