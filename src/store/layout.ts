/**
 * The OCI image layout on disk (image-spec image-layout.md): `oci-layout`, `index.json` and
 * content-addressed `blobs/<alg>/<encoded>`.
 *
 * Contracts:
 * - A blob is visible under its final name only once its whole content verified: putBlob
 *   streams into a temp file in the same directory (src/io/fs.ts temp names), through the
 *   VerifyingStream, fsyncs and renames. Anything a crash leaves is a temp file that gc sweeps.
 * - putBlob is idempotent: a blob already present is kept and the new bytes are not read.
 * - Every read verifies: getBlob returns a stream that errors before it ends on a size or
 *   digest mismatch; readBlob verifies in memory.
 * - The layout is untrusted input: blobs that are symlinks or not regular files, and blob
 *   directories that are symlinks, are refused (INVALID_LAYOUT) rather than followed.
 * - index.json is changed only by read-modify-write under a cross-process lock
 *   (src/io/lock.ts) followed by an atomic rewrite, so concurrent taggers never lose updates.
 *
 * This module is imported by `lading ls`; keep its imports light (gc is loaded on demand).
 */
import fs, { constants, promises as fsp, type Stats } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { pipeline as pipelineCb } from 'node:stream'
import { digestAlgorithm, digestHex, isAlgorithm, isDigest, type Algorithm, type Digest } from '../digest/digest.js'
import { VerifyingStream, verifyBytes } from '../digest/verify.js'
import { LadingError, isErrno, quoteName } from '../errors.js'
import { atomicWriteFile, fsyncDir, isTempName, readSmallFileSync, tempPathFor } from '../io/fs.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../io/limits.js'
import { PooledFileReader, PooledFileWriter } from '../io/block-pool.js'
import { breakerPath, withLock } from '../io/lock.js'
import { Annotation, MediaType, isIndexMediaType, isManifestMediaType } from '../spec/media-types.js'
import { manifestMediaType, parseIndex, parseLayoutFile, parseManifest } from '../spec/parse.js'
import { assertValidTag } from '../spec/ref-name.js'
import type { Descriptor, Index, RawManifest } from '../spec/types.js'

/** image-layout.md §oci-layout file: the only version defined so far. */
export const IMAGE_LAYOUT_VERSION = '1.0.0'
export const INDEX_FILE = 'index.json'
export const LAYOUT_FILE = 'oci-layout'
export const BLOBS_DIR = 'blobs'
/** The lock guarding index.json; hidden, and not a temp name, so gc leaves it to src/io/lock.ts. */
export const INDEX_LOCK_FILE = '.index.json.lock'

/**
 * How much a blob being written may queue for the disk: enough that a fast source (a registry
 * on loopback, ~64 KiB socket reads) is not paused while the thread pool writes. With 1 MiB the
 * receive stalled on every write batch; 8 MiB made a 95 MB pull into tmpfs ~25 ms faster.
 */
const WRITE_BUFFER = 8 * 1024 * 1024

export interface BlobExpectation { digest?: Digest; size?: number; name?: string }
export interface GcOptions {
  /** Keep unreferenced blobs modified less than this long ago (a writer may be about to tag them). Default 0. */
  minAgeMs?: number
}
export interface GcResult { removed: Array<{ digest: Digest; size: number }>; tempFilesRemoved: number; tempBytesRemoved: number }

export class Layout {
  readonly dir: string
  #blobDirsChecked = new Set<string>()

  private constructor(dir: string) {
    this.dir = dir
  }

  /**
   * Create a layout (dir, oci-layout, index.json, blobs/sha256). On an existing layout it only
   * checks it (idempotent). A non-empty directory that is not a layout is refused (EXISTS).
   */
  static async init(dir: string): Promise<Layout> {
    const abs = path.resolve(dir)
    await fsp.mkdir(abs, { recursive: true })
    // Under the index lock, so two concurrent inits of one directory both succeed.
    return withLock(path.join(abs, INDEX_LOCK_FILE), async () => {
      const layoutFile = path.join(abs, LAYOUT_FILE)
      let hasLayoutFile = true
      try {
        await fsp.lstat(layoutFile)
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e
        hasLayoutFile = false
      }
      if (hasLayoutFile) {
        const layout = await Layout.open(abs)
        await layout.readIndex()
        return layout
      }
      const entries = (await fsp.readdir(abs)).filter((n) => !isTempName(n) && n !== INDEX_LOCK_FILE && n !== breakerPath(INDEX_LOCK_FILE))
      if (entries.length > 0) {
        throw new LadingError('EXISTS', `${dir}: directory is not empty and is not an OCI layout (no ${LAYOUT_FILE}); refusing to initialise it`)
      }
      await fsp.mkdir(path.join(abs, BLOBS_DIR, 'sha256'), { recursive: true })
      const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }
      await atomicWriteFile(path.join(abs, INDEX_FILE), JSON.stringify(index))
      // oci-layout last: its presence marks a complete layout.
      await atomicWriteFile(layoutFile, JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION }))
      return new Layout(abs)
    })
  }

  /** Open an existing layout; INVALID_LAYOUT if oci-layout is missing, unreadable or of an unknown version. */
  static async open(dir: string): Promise<Layout> {
    const abs = path.resolve(dir)
    const file = path.join(abs, LAYOUT_FILE)
    let bytes: Buffer
    try {
      bytes = await readRegularFile(file, 64 * 1024, `${dir}/${LAYOUT_FILE}`)
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) {
        const dirExists = await fsp.stat(abs).then((s) => s.isDirectory(), () => false)
        if (!dirExists) throw new LadingError('NOT_FOUND', `${dir}: no such layout directory`, { cause: e })
        throw new LadingError('INVALID_LAYOUT', `${dir}: not an OCI image layout: ${LAYOUT_FILE} is missing`, { cause: e })
      }
      if (e instanceof LadingError) throw new LadingError('INVALID_LAYOUT', e.message, { cause: e })
      throw new LadingError('INVALID_LAYOUT', `${dir}/${LAYOUT_FILE}: unreadable: ${(e as Error).message}`, { cause: e })
    }
    const parsed = parseLayoutFile(bytes, `${dir}/${LAYOUT_FILE}`)
    if (parsed.imageLayoutVersion !== IMAGE_LAYOUT_VERSION) {
      // parseLayoutFile already refuses other versions; this guards the contract locally.
      throw new LadingError('INVALID_LAYOUT', `${dir}/${LAYOUT_FILE}: unknown imageLayoutVersion ${quoteName(parsed.imageLayoutVersion)} (Lading reads ${IMAGE_LAYOUT_VERSION})`)
    }
    return new Layout(abs)
  }

  /** image-layout.md §Blobs: blobs/<alg>/<encoded>. The digest is validated, so the path stays inside. */
  blobPath(d: Digest): string {
    return path.join(this.dir, BLOBS_DIR, digestAlgorithm(d), digestHex(d))
  }

  async hasBlob(d: Digest): Promise<boolean> {
    return (await this.#statBlob(d)) !== undefined
  }

  async blobSize(d: Digest): Promise<number | undefined> {
    return (await this.#statBlob(d))?.size
  }

  /**
   * Store a blob. Streams into a temp file next to its final name through the verifying
   * stream (against `expected` when given), fsyncs, renames. If the blob exists already (and
   * has the expected size) it is kept and `body` is not read (a Readable is destroyed).
   */
  async putBlob(body: Readable | Uint8Array, expected: BlobExpectation = {}): Promise<{ digest: Digest; size: number }> {
    if (expected.digest !== undefined) {
      const existing = await this.#statBlob(expected.digest)
      if (existing && (expected.size === undefined || existing.size === expected.size)) {
        if (body instanceof Readable) body.destroy()
        await this.#touch(expected.digest)
        return { digest: expected.digest, size: existing.size }
      }
    }
    const alg: Algorithm = expected.digest ? digestAlgorithm(expected.digest) : 'sha256'
    const algDir = await this.#blobDir(alg, true)
    if (!(body instanceof Readable)) {
      const digest = verifyBytes(body, expected)
      await this.#commitBytes(algDir, digest, body)
      return { digest, size: body.length }
    }

    const tmp = tempPathFor(expected.digest ? this.blobPath(expected.digest) : path.join(algDir, 'upload'))
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
      await fsp.rename(tmp, this.blobPath(result.digest))
      await fsyncDir(algDir)
      return result
    } catch (e) {
      body.destroy()
      await fsp.rm(tmp, { force: true })
      throw e
    }
  }

  /** A stream of the blob that errors before it ends unless size and digest match. BLOB_UNKNOWN if absent. */
  async getBlob(desc: { digest: Digest; size?: number | undefined }): Promise<Readable> {
    const fh = await this.#openBlob(desc)
    const input = new PooledFileReader(fh)
    const verifier = new VerifyingStream({ digest: desc.digest, size: desc.size, name: `blob ${desc.digest}` })
    // pipeline destroys both streams (and so closes the file) on error or early destroy by the reader.
    pipelineCb(input, verifier, () => {})
    return verifier
  }

  /**
   * The verified bytes of a (small) blob: manifests, configs, indexes. SIZE_LIMIT above
   * `maxBytes`. Read synchronously (src/io/fs.ts readSmallFileSync says why).
   */
  async readBlob(desc: { digest: Digest; size?: number | undefined }, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES): Promise<Buffer> {
    this.#blobDirSync(digestAlgorithm(desc.digest))
    let bytes: Buffer
    try {
      bytes = readSmallFileSync(this.blobPath(desc.digest), (st) => {
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

  /** Remove a blob; absent is not an error. */
  async deleteBlob(d: Digest): Promise<void> {
    await fsp.rm(this.blobPath(d), { force: true })
  }

  /** Every blob (regular files with a valid digest name under blobs/<alg>/); temp files excluded. */
  async *listBlobs(): AsyncIterable<{ digest: Digest; size: number }> {
    for (const alg of await this.#algorithms()) {
      const algDir = await this.#blobDir(alg, false)
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

  /** Temp files (ours from src/io/fs.ts) in blobs/<alg>/ and the layout root, for gc. */
  async listTempFiles(): Promise<Array<{ path: string; name: string; mtimeMs: number; size: number }>> {
    const dirs = [this.dir]
    for (const alg of await this.#algorithms()) dirs.push(await this.#blobDir(alg, false))
    const out: Array<{ path: string; name: string; mtimeMs: number; size: number }> = []
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

  /** index.json, parsed strictly (image-layout.md §index.json: it MUST be an image index). */
  async readIndex(): Promise<Index> {
    const file = path.join(this.dir, INDEX_FILE)
    const source = `${this.#name()}/${INDEX_FILE}`
    let bytes: Buffer
    try {
      bytes = await readRegularFile(file, DEFAULT_MAX_DOCUMENT_BYTES, source)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new LadingError('INVALID_LAYOUT', `${source}: missing (an OCI layout must have ${INDEX_FILE})`, { cause: e })
      throw e
    }
    const index = parseIndex(bytes, source)
    if (index.mediaType !== undefined && index.mediaType !== MediaType.OciIndex) {
      throw new LadingError('INVALID_INDEX', `${source}: /mediaType: ${quoteName(index.mediaType)} is not ${MediaType.OciIndex}`)
    }
    return index
  }

  /** Read-modify-write index.json under the layout's lock; the rewrite is atomic. Returns what was written. */
  async updateIndex(fn: (index: Index) => Index | Promise<Index>, opts: { timeoutMs?: number } = {}): Promise<Index> {
    return withLock(path.join(this.dir, INDEX_LOCK_FILE), async () => {
      const next = await fn(await this.readIndex())
      const bytes = Buffer.from(JSON.stringify(next))
      // Never write an index.json we would refuse to read.
      parseIndex(bytes, `${this.#name()}/${INDEX_FILE} (being written)`)
      await atomicWriteFile(path.join(this.dir, INDEX_FILE), bytes)
      return next
    }, opts)
  }

  /** Run `fn` holding the index.json lock without rewriting it (gc holds it while it sweeps). */
  async withIndexLock<T>(fn: () => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
    return withLock(path.join(this.dir, INDEX_LOCK_FILE), fn, opts)
  }

  /** Tags in index.json order: descriptors carrying org.opencontainers.image.ref.name. */
  async listTags(): Promise<Array<{ tag: string; descriptor: Descriptor }>> {
    const index = await this.readIndex()
    const out: Array<{ tag: string; descriptor: Descriptor }> = []
    for (const d of index.manifests) {
      const tag = d.annotations?.[Annotation.RefName]
      if (tag !== undefined) out.push({ tag, descriptor: d })
    }
    return out
  }

  /** All index.json entries carrying this tag (several when a tool tags one entry per platform). */
  async tagEntries(tag: string): Promise<Descriptor[]> {
    const index = await this.readIndex()
    return index.manifests.filter((d) => d.annotations?.[Annotation.RefName] === tag)
  }

  /** The descriptor a tag names; NOT_FOUND naming the tag and layout (and the tags there are). */
  async resolveTag(tag: string): Promise<Descriptor> {
    const tags = await this.listTags()
    const hit = tags.find((t) => t.tag === tag)
    if (!hit) throw this.tagNotFound(tag, tags.map((t) => t.tag))
    return hit.descriptor
  }

  /** The error for a missing tag, listing the tags the layout has. */
  tagNotFound(tag: string, have: string[]): LadingError {
    const list = have.length === 0 ? 'it has no tags' : `tags: ${[...new Set(have)].slice(0, 20).join(', ')}${have.length > 20 ? ', …' : ''}`
    return new LadingError('NOT_FOUND', `tag ${quoteName(tag)} not found in layout ${this.#name()} (${list})`)
  }

  /**
   * Point `tag` at `desc`: replaces every entry carrying that ref.name with one new entry. The
   * descriptor's blob must exist (no dangling tags); other annotations of `desc` are kept.
   */
  async setTag(tag: string, desc: Descriptor): Promise<void> {
    assertValidTag(tag)
    const entry: Descriptor = { ...desc, annotations: { ...desc.annotations, [Annotation.RefName]: tag } }
    await this.updateIndex(async (index) => {
      // Checked under the lock: gc holds it while sweeping, so the blob cannot vanish between
      // this check and the write.
      if (!(await this.hasBlob(desc.digest))) {
        throw new LadingError('BLOB_UNKNOWN', `cannot tag ${quoteName(tag)}: blob ${desc.digest} is not in layout ${this.#name()}`)
      }
      return { ...index, manifests: [...index.manifests.filter((d) => d.annotations?.[Annotation.RefName] !== tag), entry] }
    })
  }

  /** Remove the entries carrying `tag`; NOT_FOUND if there are none. Blobs stay until gc. */
  async removeTag(tag: string): Promise<void> {
    await this.updateIndex((index) => {
      const manifests = index.manifests.filter((d) => d.annotations?.[Annotation.RefName] !== tag)
      if (manifests.length === index.manifests.length) {
        throw this.tagNotFound(tag, index.manifests.flatMap((d) => d.annotations?.[Annotation.RefName] ?? []))
      }
      return { ...index, manifests }
    })
  }

  /**
   * Store a manifest or index document exactly as given, after checking it parses as what
   * `mediaType` says (other media types, e.g. future ones, are stored unchecked).
   */
  async putManifest(bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    const source = 'manifest being stored'
    if (isIndexMediaType(mediaType)) parseIndex(bytes, source, mediaType)
    else if (isManifestMediaType(mediaType)) parseManifest(bytes, source, mediaType)
    const { digest, size } = await this.putBlob(bytes)
    return { mediaType, digest, size }
  }

  /** A stored manifest/index: verified bytes, and its media type (the descriptor's, else the document's). */
  async getManifest(desc: { digest: Digest; size?: number | undefined; mediaType?: string | undefined }): Promise<RawManifest> {
    const bytes = await this.readBlob(desc)
    const mediaType = desc.mediaType ?? manifestMediaType(bytes, `blob ${desc.digest}`)
    return { bytes, mediaType, digest: desc.digest }
  }

  /** Manifests/indexes in this layout whose `subject` is `subject` (src/store/referrers.ts). */
  async listReferrers(subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const { listReferrers } = await import('./referrers.js')
    return listReferrers(this, subject, artifactType)
  }

  /** Mark and sweep (src/store/gc.ts), holding the index lock. */
  async gc(opts: GcOptions = {}): Promise<GcResult> {
    const { collectGarbage } = await import('./gc.js')
    return collectGarbage(this, opts)
  }

  #name(): string {
    return this.dir
  }

  /** lstat a blob; undefined when absent; INVALID_LAYOUT when it is a symlink or not a regular file. */
  async #statBlob(d: Digest): Promise<Stats | undefined> {
    await this.#blobDir(digestAlgorithm(d), false)
    let st: Stats
    try {
      st = await fsp.lstat(this.blobPath(d))
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined
      throw e
    }
    if (!st.isFile()) throw notRegular(`${BLOBS_DIR}/${digestAlgorithm(d)}/${digestHex(d)}`, st, this.#name())
    return st
  }

  /**
   * Open a blob for reading without following symlinks; BLOB_UNKNOWN when absent; early
   * SIZE_MISMATCH. O_NONBLOCK so that a FIFO planted as a blob cannot block the open (it is then
   * refused as not a regular file); it has no effect on regular files.
   */
  async #openBlob(desc: { digest: Digest; size?: number | undefined }) {
    await this.#blobDir(digestAlgorithm(desc.digest), false)
    let fh
    try {
      fh = await fsp.open(this.blobPath(desc.digest), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
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
      return new LadingError('BLOB_UNKNOWN', `blob ${d} not found in layout ${this.#name()}`, { cause: e })
    }
    if (isErrno(e, 'ELOOP')) {
      return new LadingError('INVALID_LAYOUT', `${this.#name()}: ${BLOBS_DIR}/${digestAlgorithm(d)}/${digestHex(d)} is a symbolic link; refusing to follow it`, { cause: e })
    }
    return e
  }

  /** An opened blob must be a regular file of the expected size (early SIZE_MISMATCH). */
  #checkBlobStat(desc: { digest: Digest; size?: number | undefined }, st: Stats): void {
    if (!st.isFile()) throw notRegular(`${BLOBS_DIR}/${digestAlgorithm(desc.digest)}/${digestHex(desc.digest)}`, st, this.#name())
    if (desc.size !== undefined && st.size !== desc.size) {
      throw new LadingError('SIZE_MISMATCH', `blob ${desc.digest}: size mismatch: expected ${desc.size} bytes, file has ${st.size}`)
    }
  }

  /** blobs/<alg>, checked once to be a real directory (a symlinked blobs dir could point anywhere). */
  async #blobDir(alg: Algorithm, create: boolean): Promise<string> {
    const dir = this.#blobDirSync(alg)
    if (!create || this.#blobDirsChecked.has(alg)) return dir
    // Checked before creating too, so that mkdir never follows a symlinked blobs/ out of the layout.
    await fsp.mkdir(dir, { recursive: true })
    return this.#blobDirSync(alg)
  }

  /**
   * The check of #blobDir, synchronously (readBlob reads in one turn): two lstats, once per
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
        throw new LadingError('INVALID_LAYOUT', `${this.#name()}: ${path.relative(this.dir, p)} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; refusing to use it`)
      }
    }
    this.#blobDirsChecked.add(alg)
    return dir
  }

  async #algorithms(): Promise<Algorithm[]> {
    try {
      const st = await fsp.lstat(path.join(this.dir, BLOBS_DIR))
      if (!st.isDirectory()) throw new LadingError('INVALID_LAYOUT', `${this.#name()}: ${BLOBS_DIR} is not a directory`)
      return (await fsp.readdir(path.join(this.dir, BLOBS_DIR))).filter(isAlgorithm).sort()
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return []
      throw e
    }
  }

  /**
   * Refresh an existing blob's mtime when a writer re-puts it, so `gc --keep-recent` treats it
   * as new (the writer is about to reference it). Best effort: a read-only layout still reads.
   */
  async #touch(d: Digest): Promise<void> {
    const now = new Date()
    await fsp.utimes(this.blobPath(d), now, now).catch(() => {})
  }

  async #commitBytes(algDir: string, digest: Digest, bytes: Uint8Array): Promise<void> {
    const target = this.blobPath(digest)
    if (await this.#statBlob(digest)) {
      await this.#touch(digest)
      return
    }
    const tmp = tempPathFor(target)
    const fh = await fsp.open(tmp, 'wx', 0o644)
    try {
      await fh.writeFile(bytes)
      await fh.sync()
      await fh.close()
      await fsp.rename(tmp, target)
    } catch (e) {
      await fh.close().catch(() => {})
      await fsp.rm(tmp, { force: true })
      throw e
    }
    await fsyncDir(algDir)
  }
}

function notRegular(rel: string, st: Stats, layout: string): LadingError {
  const what = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'not a regular file'
  return new LadingError('INVALID_LAYOUT', `${layout}: ${rel} is ${what}; refusing it (a blob must be a regular file)`)
}

/** Read a small regular file without following a symlink, failing with SIZE_LIMIT above `max`. */
async function readRegularFile(file: string, max: number, source: string): Promise<Buffer> {
  try {
    return readSmallFileSync(file, (st) => {
      if (!st.isFile()) throw new LadingError('INVALID_LAYOUT', `${source}: not a regular file`)
      if (st.size > max) throw new LadingError('SIZE_LIMIT', `${source}: ${st.size} bytes is larger than the limit of ${max} bytes`)
    })
  } catch (e) {
    if (isErrno(e, 'ELOOP')) throw new LadingError('INVALID_LAYOUT', `${source}: is a symbolic link; refusing to follow it`, { cause: e })
    throw e
  }
}

