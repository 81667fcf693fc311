/**
 * Upload sessions of the file-system blob store (src/store/blob-store.ts UploadSessions), kept on
 * disk so that they survive the process (a restarted registry server resumes them):
 *
 *   <dir>/<id>/meta.json   whom the session is for, when it started
 *   <dir>/<id>/data        the bytes received so far, in order; the session's size is its size
 *
 * Contracts (beyond the interface's):
 * - A chunk is all or nothing within a process: if its body breaks off or disagrees with its
 *   declared length, the data file is truncated back to the size before it, so the status read
 *   after a failure is where the client may resume. After a crash the file holds what reached it,
 *   and status reports exactly that (distribution-spec §Pushing a blob in chunks: the client
 *   resumes from the Range the server reports); commit verifies everything anyway.
 * - Chunks of one session are applied one at a time (a per-session queue, src/store/upload-sessions.ts).
 * - The sha256 is computed while the bytes arrive (a running hash, copied before each chunk so a
 *   failed chunk does not spoil it). After a restart the running hash is gone and commit hashes
 *   the data file once instead.
 * - Nothing becomes a blob before it verified: commit checks digest (and size), fsyncs the data
 *   and hard-links it into blobs/<alg>/ (link, never rename: an existing blob, perhaps hard-linked
 *   elsewhere by a registry, is never replaced), then removes the session.
 * - Session ids are checked against their grammar before they touch a path. A meta.json cut short
 *   by a crash does not parse: the session is then unknown (and swept as idle).
 */
import type { Hash } from 'node:crypto'
import { createReadStream, promises as fsp, type Stats } from 'node:fs'
import path from 'node:path'
import { Readable, Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { digestAlgorithm, newHash, type Algorithm, type Digest } from '../../digest/digest.js'
import { LadingError, isErrno } from '../../errors.js'
import { fsyncDir } from '../../io/fs.js'
import { POOL_BLOCK_SIZE, PooledFileWriter, returnOutBlock, takeOutBlock } from '../../io/block-pool.js'
import type { BlobExpectation, BlobInfo, UploadSessions, UploadStatus } from '../blob-store.js'
import { SerialQueues, checkLength, checkOffset, isSessionId, newSessionId, unknownSession } from '../upload-sessions.js'

/** Bytes a chunk may queue for the disk (as FsBlobStore's WRITE_BUFFER, and for the same reason). */
const WRITE_BUFFER = 8 * 1024 * 1024
/** The size of the writes a chunk is gathered into (a pool block; OUT_BLOCK_SIZE has room for it). */
const BATCH_BYTES = POOL_BLOCK_SIZE

/** What this process knows beyond the disk: the running hash, and how far the data is fsynced. */
interface Live {
  /** sha256 over bytes [0, hashed). */
  hash: Hash | undefined
  hashed: number
  syncedSize: number
}

/** What the sessions need of the FsBlobStore they commit into (an interface: no import cycle). */
export interface BlobDirs {
  /** blobs/<alg>, checked to be a real directory (created when `create`). */
  blobDir(alg: Algorithm, create: boolean): Promise<string>
  path(d: Digest): string
  touch(d: Digest): Promise<void>
  put(body: Readable, expected: BlobExpectation): Promise<BlobInfo>
}

export class FsUploads implements UploadSessions {
  readonly durable = true
  /** Where the sessions live (a parameter of the store: a registry keeps them outside its layouts). */
  readonly dir: string
  readonly #store: BlobDirs
  readonly #live = new Map<string, Live>()
  /**
   * meta.json of sessions this process started or has read (it is written once, at start, and
   * never changes), so that status(), which every PATCH and PUT of a registry asks two or three
   * times, is one lstat of the data file instead of open, fstat, read, close and lstat. A removed
   * session still reads as unknown: its data file is gone.
   */
  readonly #owners = new Map<string, { owner: string | undefined }>()
  readonly #queues = new SerialQueues()

  constructor(store: BlobDirs, dir: string) {
    this.#store = store
    this.dir = dir
  }

  async start(owner?: string): Promise<UploadStatus> {
    await fsp.mkdir(this.dir, { recursive: true })
    const id = newSessionId()
    const d = path.join(this.dir, id)
    await fsp.mkdir(d)
    await fsp.writeFile(path.join(d, 'data'), '')
    const startedMs = Date.now()
    // A plain write into the fresh directory: a torn meta.json makes the session unknown (above).
    await fsp.writeFile(path.join(d, 'meta.json'), JSON.stringify({ owner, startedMs }))
    this.#live.set(id, { hash: newHash('sha256'), hashed: 0, syncedSize: 0 })
    this.#owners.set(id, { owner })
    return { id, size: 0, owner, lastActiveMs: startedMs }
  }

  async status(id: string): Promise<UploadStatus> {
    if (!isSessionId(id)) throw unknownSession(id)
    const d = path.join(this.dir, id)
    let known = this.#owners.get(id)
    let st: Stats
    try {
      if (!known) {
        const meta = JSON.parse(await fsp.readFile(path.join(d, 'meta.json'), 'utf8')) as { owner?: unknown } | null
        if (meta === null || typeof meta !== 'object') throw unknownSession(id)
        known = { owner: typeof meta.owner === 'string' ? meta.owner : undefined }
      }
      st = await fsp.lstat(path.join(d, 'data'))
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR') || e instanceof SyntaxError) {
        this.#owners.delete(id) // removed by another process (a gc sweeping idle sessions)
        throw unknownSession(id, e)
      }
      throw e
    }
    if (!st.isFile()) throw unknownSession(id)
    // Remembered only once the session proved whole (a torn one stays unknown, and is read again).
    this.#owners.set(id, known)
    return { id, size: st.size, owner: known.owner, lastActiveMs: st.mtimeMs }
  }

  async append(id: string, offset: number | undefined, chunk: Readable | Uint8Array, length?: number): Promise<UploadStatus> {
    const body = chunk instanceof Readable ? chunk : Readable.from([chunk])
    return this.#queues.run(id, async () => {
      let st: UploadStatus
      try {
        st = await this.status(id)
        checkOffset(id, offset, st.size)
      } catch (e) {
        body.resume() // the caller's body is not left paused (an HTTP request waits on it)
        throw e
      }
      const live = this.#live.get(id)
      const hash = live?.hash && live.hashed === st.size ? live.hash.copy() : undefined
      const file = path.join(this.dir, id, 'data')
      let received = 0
      // Counts, checks and hashes on the way to the file, and gathers the body's small chunks
      // (an HTTP request arrives in 16-64 KiB reads) into 1 MiB blocks of the block pool, which
      // PooledFileWriter hands back once the file has them. Without this, each socket read was
      // a write of its own whenever the file kept up (tmpfs always does): about 1,500
      // FileHandle.writev calls for a 95 MB layer, some 60-80 ms of the server's main thread
      // in a CPU profile of a skopeo push; copying into the blocks costs a fraction of that.
      // PooledFileWriter fsyncs before it finishes, so an acknowledged chunk is on disk.
      let block: Buffer | undefined
      let filled = 0
      const tap = new Transform({
        transform(c: Buffer, _enc, cb) {
          received += c.length
          try {
            checkLength(received, length, false)
          } catch (e) {
            cb(e as Error)
            return
          }
          hash?.update(c)
          for (let off = 0; off < c.length;) {
            block ??= takeOutBlock()
            const n = c.copy(block, filled, off, Math.min(c.length, off + BATCH_BYTES - filled))
            filled += n
            off += n
            if (filled === BATCH_BYTES) {
              this.push(block.subarray(0, filled))
              block = undefined
              filled = 0
            }
          }
          cb()
        },
        flush(cb) {
          if (block) {
            if (filled > 0) this.push(block.subarray(0, filled))
            else returnOutBlock(block)
          }
          block = undefined
          cb()
        },
      })
      let ok = false
      try {
        // Append mode: operations on a session are serial, so the file ends at st.size.
        const fh = await fsp.open(file, 'a').catch((e: unknown) => {
          throw isErrno(e, 'ENOENT') ? unknownSession(id, e) : e
        })
        await pipeline(body, tap, new PooledFileWriter(fh, WRITE_BUFFER))
        checkLength(received, length, true)
        ok = true
      } finally {
        if (!ok) await fsp.truncate(file, st.size).catch(() => {})
      }
      const size = st.size + received
      this.#live.set(id, { hash, hashed: hash ? size : 0, syncedSize: size })
      return { id, size, owner: st.owner, lastActiveMs: Date.now() }
    })
  }

  async commit(id: string, expected: { digest: Digest; size?: number }): Promise<BlobInfo> {
    return this.#queues.run(id, async () => {
      const st = await this.status(id)
      const file = path.join(this.dir, id, 'data')
      const { digest } = expected
      const alg: Algorithm = digestAlgorithm(digest)
      const live = this.#live.get(id)
      let actual: string
      if (alg === 'sha256' && live?.hash && live.hashed === st.size) {
        actual = `sha256:${live.hash.copy().digest('hex')}`
      } else {
        const h = newHash(alg)
        await pipeline(
          createReadStream(file, { highWaterMark: 1024 * 1024 }),
          new Writable({
            write(c: Buffer, _e, cb) {
              h.update(c)
              cb()
            },
          }),
        )
        actual = `${alg}:${h.digest('hex')}`
      }
      if (expected.size !== undefined && expected.size !== st.size) {
        await this.#remove(id)
        throw new LadingError('SIZE_MISMATCH', `upload ${id}: size mismatch: expected ${expected.size} bytes, received ${st.size}`)
      }
      if (actual !== digest) {
        await this.#remove(id)
        throw new LadingError('DIGEST_MISMATCH', `upload ${id}: digest mismatch: expected ${digest}, the ${st.size} bytes received are ${actual}`)
      }
      if (live?.syncedSize !== st.size) {
        const fh = await fsp.open(file, 'r')
        try {
          await fh.sync()
        } finally {
          await fh.close()
        }
      }
      const algDir = await this.#store.blobDir(alg, true)
      try {
        await fsp.link(file, this.#store.path(digest))
        await fsyncDir(algDir)
      } catch (e) {
        if (isErrno(e, 'EEXIST')) {
          await this.#store.touch(digest)
        } else if (isErrno(e, 'EXDEV')) {
          // Sessions on another file system than the blobs: copied, verified again by put.
          await this.#store.put(createReadStream(file), { digest, size: st.size })
        } else {
          throw e
        }
      }
      await this.#remove(id)
      return { digest, size: st.size }
    })
  }

  async abort(id: string): Promise<void> {
    if (!isSessionId(id)) return
    await this.#queues.run(id, () => this.#remove(id))
  }

  async list(): Promise<UploadStatus[]> {
    let names: string[]
    try {
      names = await fsp.readdir(this.dir)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return []
      throw e
    }
    const out: UploadStatus[] = []
    for (const id of names) {
      if (!isSessionId(id)) continue
      try {
        out.push(await this.status(id))
      } catch (e) {
        if (!(e instanceof LadingError && e.code === 'NOT_FOUND')) throw e
        // Torn by a crash (no meta.json or data): listed by its directory, so sweep removes it.
        const dirSt = await fsp.lstat(path.join(this.dir, id)).catch(() => undefined)
        if (dirSt?.isDirectory()) out.push({ id, size: 0, lastActiveMs: dirSt.mtimeMs })
      }
    }
    return out
  }

  async sweep(maxIdleMs: number, now = Date.now()): Promise<{ sessions: number; bytes: number }> {
    const r = { sessions: 0, bytes: 0 }
    for (const s of await this.list()) {
      if (now - s.lastActiveMs < maxIdleMs) continue
      await this.abort(s.id)
      r.sessions++
      r.bytes += s.size
    }
    return r
  }

  async #remove(id: string): Promise<void> {
    this.#live.delete(id)
    const d = path.join(this.dir, id)
    try {
      // A session is these two files: three calls, where fs.rm's recursive walk makes about
      // twelve (lstats, a failing rmdir, opendir, readdir, an lstat per entry...), each a trip
      // through libuv's thread pool, on every commit (strace of a skopeo push). Anything else in the directory (or a failure)
      // falls back to the walk.
      await Promise.all([unlinkIfPresent(path.join(d, 'data')), unlinkIfPresent(path.join(d, 'meta.json'))])
      await fsp.rmdir(d)
    } catch {
      await fsp.rm(d, { recursive: true, force: true })
    } finally {
      this.#owners.delete(id)
    }
  }
}

/** unlink; an absent file is fine (fs.rm would lstat it first, and again inside). */
async function unlinkIfPresent(p: string): Promise<void> {
  try {
    await fsp.unlink(p)
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e
  }
}
