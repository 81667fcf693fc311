/**
 * The blob store of an OCI image layout on disk: `blobs/<alg>/<encoded>` (image-spec
 * image-layout.md §Blobs). The contracts are src/store/blob-store.ts's; how this one keeps them:
 * - put streams into a temp file next to the final name (src/io/fs.ts temp names), through the
 *   VerifyingStream, fsyncs and renames. Anything a crash leaves is a temp file that `sweep`
 *   (gc) removes once its writer is dead.
 * - The layout is untrusted input: blobs that are symlinks or not regular files, and blob
 *   directories that are symlinks, are refused (INVALID_LAYOUT) rather than followed.
 * - Upload sessions live on disk (src/store/fs/uploads.ts), by default in `<layout>/.lading-uploads`,
 *   or where the constructor's `uploadsDir` says (a registry keeps them beside its content store),
 *   so a new store over the same directory (a restarted server) resumes them.
 */
import fs, { constants, promises as fsp, type Stats } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { digestAlgorithm, digestHex, isAlgorithm, isDigest, type Algorithm, type Digest } from '../../digest/digest.js'
import { VerifyingStream, verifiedStream, verifyBytes } from '../../digest/verify.js'
import { LadingError, isErrno } from '../../errors.js'
import { fsyncDir, isTempName, readSmallFileSync, tempNamePid, tempPathFor } from '../../io/fs.js'
import { ABANDONED_MIN_IDLE_MS, isAbandonedTemp, releaseTemp, removeTemp } from '../../io/cleanup.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../../io/limits.js'
import { PooledFileReader, PooledFileWriter } from '../../io/block-pool.js'
import type { BlobExpectation, BlobInfo, BlobRef, BlobStat, BlobStore, UploadSessions } from '../blob-store.js'
import { BLOBS_DIR, notRegular } from './layout-files.js'
import { FsUploads } from './uploads.js'

/**
 * How much a blob being written may queue for the disk: enough that a fast source (a registry
 * on loopback, ~64 KiB socket reads) is not paused while the thread pool writes. With 1 MiB the
 * receive stalled on every write batch; 8 MiB made a 95 MB pull into tmpfs ~25 ms faster.
 */
const WRITE_BUFFER = 8 * 1024 * 1024

/** Where a layout's upload sessions are kept unless the store is told otherwise. */
export const UPLOADS_DIR = '.lading-uploads'

/** Upload sessions idle this long are removed by `sweep` (gc) unless the store is told otherwise (as `lading serve --upload-ttl`'s default). */
export const UPLOAD_TTL_MS = 24 * 60 * 60 * 1000

export interface TempFile {
  path: string
  name: string
  mtimeMs: number
  size: number
}

export class FsBlobStore implements BlobStore {
  /** The layout root (blobs/ is inside it). */
  readonly dir: string
  readonly uploads: UploadSessions
  #blobDirsChecked = new Set<string>()
  #swept: Promise<unknown> | undefined
  readonly #uploadTtlMs: number

  /**
   * `uploadsDir`: where upload sessions live; `uploadTtlMs`: how long an idle one lasts before
   * `sweep` removes it (Infinity: never, for an owner that sweeps them by its own policy).
   */
  constructor(dir: string, opts: { uploadsDir?: string; uploadTtlMs?: number } = {}) {
    this.dir = dir
    this.uploads = new FsUploads(this, opts.uploadsDir ?? path.join(dir, UPLOADS_DIR))
    this.#uploadTtlMs = opts.uploadTtlMs ?? UPLOAD_TTL_MS
  }

  /** image-layout.md §Blobs: blobs/<alg>/<encoded>. The digest is validated, so the path stays inside. */
  path(d: Digest): string {
    return path.join(this.dir, BLOBS_DIR, digestAlgorithm(d), digestHex(d))
  }

  async stat(d: Digest): Promise<BlobStat | undefined> {
    const st = await this.#statBlob(d)
    return st && { digest: d, size: st.size, modifiedMs: st.mtimeMs }
  }

  async put(body: Readable | Uint8Array, expected: BlobExpectation = {}): Promise<BlobInfo> {
    // The first write of this process to the layout clears what killed writers left behind
    // (dead pid and idle ABANDONED_MIN_IDLE_MS: src/io/cleanup.ts).
    this.#swept ??= this.sweep(ABANDONED_MIN_IDLE_MS).catch(() => undefined)
    await this.#swept
    if (expected.digest !== undefined) {
      const existing = await this.#statBlob(expected.digest)
      if (existing && (expected.size === undefined || existing.size === expected.size)) {
        if (body instanceof Readable) body.destroy()
        await this.touch(expected.digest)
        return { digest: expected.digest, size: existing.size }
      }
    }
    const alg: Algorithm = expected.digest ? digestAlgorithm(expected.digest) : 'sha256'
    const algDir = await this.blobDir(alg, true)
    if (!(body instanceof Readable)) {
      const digest = verifyBytes(body, expected)
      await this.#commitBytes(algDir, digest, body)
      return { digest, size: body.length }
    }

    const tmp = tempPathFor(expected.digest ? this.path(expected.digest) : path.join(algDir, 'upload'))
    // An input attested to expected.digest (a source's verifying stream) is not hashed twice.
    const verifier = new VerifyingStream({ ...expected, name: expected.name ?? expected.digest }, alg, body)
    try {
      // Opened before streaming starts, so a failure can never race a late file creation; the
      // writer closes the handle, and fsyncs before it finishes, so the rename below never
      // exposes unwritten data after a crash.
      const fh = await fsp.open(tmp, 'wx', 0o644)
      const out = new PooledFileWriter(fh, WRITE_BUFFER)
      await pipeline(body, verifier, out)
      const result = verifier.result
      if (!result) throw new Error('verifying stream ended without a result')
      await fsp.rename(tmp, this.path(result.digest))
      releaseTemp(tmp)
      await fsyncDir(algDir)
      return result
    } catch (e) {
      body.destroy()
      await removeTemp(tmp)
      throw e
    }
  }

  async get(desc: BlobRef): Promise<Readable> {
    const fh = await this.#openBlob(desc)
    // Destroying the verified stream destroys the reader, and so closes the file.
    return verifiedStream(new PooledFileReader(fh), { digest: desc.digest, size: desc.size, name: `blob ${desc.digest}` })
  }

  /** Read synchronously (src/io/fs.ts readSmallFileSync says why). */
  async read(desc: BlobRef, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES): Promise<Buffer> {
    this.#blobDirSync(digestAlgorithm(desc.digest))
    let bytes: Buffer
    try {
      bytes = readSmallFileSync(this.path(desc.digest), (st) => {
        this.#checkBlobStat(desc, st)
        if (st.size > maxBytes) {
          throw new LadingError('SIZE_LIMIT', `blob ${desc.digest}: ${st.size} bytes is larger than the limit of ${maxBytes} bytes for a document`)
        }
      })
    } catch (e) {
      throw this.#openError(desc.digest, e)
    }
    verifyBytes(bytes, { digest: desc.digest, size: desc.size, name: `blob ${desc.digest}` })
    return bytes
  }

  async delete(d: Digest): Promise<void> {
    await fsp.rm(this.path(d), { force: true })
  }

  /** Regular files with a valid digest name under blobs/<alg>/; temp files excluded. */
  async *list(): AsyncIterable<BlobInfo> {
    for (const alg of await this.#algorithms()) {
      const algDir = await this.blobDir(alg, false)
      let names: string[]
      try {
        names = await fsp.readdir(algDir)
      } catch (e) {
        if (isErrno(e, 'ENOENT')) continue
        throw e
      }
      names.sort()
      for (const name of names) {
        const digest = `${alg}:${name}`
        if (isTempName(name) || !isDigest(digest)) continue
        let st: Stats
        try {
          st = await fsp.lstat(path.join(algDir, name))
        } catch (e) {
          if (isErrno(e, 'ENOENT')) continue
          throw e
        }
        if (!st.isFile()) continue
        yield { digest: digest as Digest, size: st.size }
      }
    }
  }

  async touch(d: Digest): Promise<void> {
    const now = new Date()
    // Best effort: a read-only layout still reads.
    await fsp.utimes(this.path(d), now, now).catch(() => {})
  }

  /** Temp files (ours from src/io/fs.ts) in blobs/<alg>/ and the layout root. */
  async listTempFiles(): Promise<TempFile[]> {
    const dirs = [this.dir]
    for (const alg of await this.#algorithms()) dirs.push(await this.blobDir(alg, false))
    const out: TempFile[] = []
    for (const dir of dirs) {
      let names: string[]
      try {
        names = await fsp.readdir(dir)
      } catch (e) {
        if (isErrno(e, 'ENOENT')) continue
        throw e
      }
      for (const name of names) {
        if (!isTempName(name)) continue
        const p = path.join(dir, name)
        try {
          const st = await fsp.lstat(p)
          if (st.isFile()) out.push({ path: p, name, mtimeMs: st.mtimeMs, size: st.size })
        } catch (e) {
          if (!isErrno(e, 'ENOENT')) throw e
        }
      }
    }
    return out
  }

  /**
   * Temp files are removed only when their writer (the pid in the name, src/io/fs.ts) is gone,
   * by the one rule of src/io/cleanup.ts isAbandonedTemp (`minIdleMs` on top): a blob another
   * process is writing right now is never removed. Upload sessions idle `uploadTtlMs` go too.
   */
  async sweep(minIdleMs = 0): Promise<{ filesRemoved: number; bytesRemoved: number }> {
    const now = Date.now()
    let filesRemoved = 0
    let bytesRemoved = 0
    for (const t of await this.listTempFiles()) {
      if (!isAbandonedTemp(tempNamePid(t.name), now - t.mtimeMs, minIdleMs)) continue
      try {
        await fsp.rm(t.path)
        filesRemoved++
        bytesRemoved += t.size
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e
      }
    }
    // Upload sessions outlive their writer by design (a restarted server resumes them): they go by idleness.
    if (this.#uploadTtlMs !== Infinity) {
      const r = await this.uploads.sweep(this.#uploadTtlMs, now)
      filesRemoved += r.sessions
      bytesRemoved += r.bytes
    }
    return { filesRemoved, bytesRemoved }
  }

  /** blobs/<alg>, checked once to be a real directory (a symlinked blobs dir could point anywhere). */
  async blobDir(alg: Algorithm, create: boolean): Promise<string> {
    const dir = this.#blobDirSync(alg)
    if (!create || this.#blobDirsChecked.has(alg)) return dir
    // Checked before creating too, so that mkdir never follows a symlinked blobs/ out of the layout.
    await fsp.mkdir(dir, { recursive: true })
    return this.#blobDirSync(alg)
  }

  /** lstat a blob; undefined when absent; INVALID_LAYOUT when it is a symlink or not a regular file. */
  async #statBlob(d: Digest): Promise<Stats | undefined> {
    await this.blobDir(digestAlgorithm(d), false)
    let st: Stats
    try {
      st = await fsp.lstat(this.path(d))
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined
      throw e
    }
    if (!st.isFile()) throw notRegular(`${BLOBS_DIR}/${digestAlgorithm(d)}/${digestHex(d)}`, st, this.dir)
    return st
  }

  /**
   * Open a blob for reading without following symlinks; BLOB_UNKNOWN when absent; early
   * SIZE_MISMATCH. O_NONBLOCK so that a FIFO planted as a blob cannot block the open (it is then
   * refused as not a regular file); it has no effect on regular files.
   */
  async #openBlob(desc: BlobRef) {
    await this.blobDir(digestAlgorithm(desc.digest), false)
    let fh
    try {
      fh = await fsp.open(this.path(desc.digest), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
    } catch (e) {
      throw this.#openError(desc.digest, e)
    }
    try {
      this.#checkBlobStat(desc, await fh.stat())
    } catch (e) {
      await fh.close()
      throw e
    }
    return fh
  }

  /** What a failed open of a blob means: BLOB_UNKNOWN when absent, INVALID_LAYOUT for a symlink. */
  #openError(d: Digest, e: unknown): unknown {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) {
      return new LadingError('BLOB_UNKNOWN', `blob ${d} not found in layout ${this.dir}`, { cause: e })
    }
    if (isErrno(e, 'ELOOP')) {
      return new LadingError('INVALID_LAYOUT', `${this.dir}: ${BLOBS_DIR}/${digestAlgorithm(d)}/${digestHex(d)} is a symbolic link; refusing to follow it`, {
        cause: e,
      })
    }
    return e
  }

  /** An opened blob must be a regular file of the expected size (early SIZE_MISMATCH). */
  #checkBlobStat(desc: BlobRef, st: Stats): void {
    if (!st.isFile()) throw notRegular(`${BLOBS_DIR}/${digestAlgorithm(desc.digest)}/${digestHex(desc.digest)}`, st, this.dir)
    if (desc.size !== undefined && st.size !== desc.size) {
      throw new LadingError('SIZE_MISMATCH', `blob ${desc.digest}: size mismatch: expected ${desc.size} bytes, file has ${st.size}`)
    }
  }

  /**
   * The check of blobDir, synchronously (read reads in one turn): two lstats, once per
   * algorithm. An absent directory is not an error here; the open that follows reports it.
   */
  #blobDirSync(alg: Algorithm): string {
    const dir = path.join(this.dir, BLOBS_DIR, alg)
    if (this.#blobDirsChecked.has(alg)) return dir
    for (const p of [path.join(this.dir, BLOBS_DIR), dir]) {
      let st: Stats
      try {
        st = fs.lstatSync(p)
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return dir
        throw e
      }
      if (!st.isDirectory()) {
        throw new LadingError(
          'INVALID_LAYOUT',
          `${this.dir}: ${path.relative(this.dir, p)} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; refusing to use it`,
        )
      }
    }
    this.#blobDirsChecked.add(alg)
    return dir
  }

  async #algorithms(): Promise<Algorithm[]> {
    try {
      const st = await fsp.lstat(path.join(this.dir, BLOBS_DIR))
      if (!st.isDirectory()) throw new LadingError('INVALID_LAYOUT', `${this.dir}: ${BLOBS_DIR} is not a directory`)
      return (await fsp.readdir(path.join(this.dir, BLOBS_DIR))).filter(isAlgorithm).sort()
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return []
      throw e
    }
  }

  async #commitBytes(algDir: string, digest: Digest, bytes: Uint8Array): Promise<void> {
    const target = this.path(digest)
    if (await this.#statBlob(digest)) {
      await this.touch(digest)
      return
    }
    const tmp = tempPathFor(target)
    const fh = await fsp.open(tmp, 'wx', 0o644)
    try {
      await fh.writeFile(bytes)
      await fh.sync()
      await fh.close()
      await fsp.rename(tmp, target)
      releaseTemp(tmp)
    } catch (e) {
      await fh.close().catch(() => {})
      await removeTemp(tmp)
      throw e
    }
    await fsyncDir(algDir)
  }
}
