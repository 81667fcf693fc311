/**
 * Whole-layout validation for `lading validate`: everything image-layout.md asks of a layout,
 * and everything the referenced documents ask of their content.
 *
 * Walk: `oci-layout` -> `index.json` -> every reachable index, manifest, config and layer, and
 * every `subject`. For each reachable blob: it exists as a regular file (not a symlink, FIFO or
 * directory) at blobs/<alg>/<encoded> (image-layout.md §Blobs), its size equals the
 * descriptor's, and its content hashes to the digest (streamed through the one VerifyingStream,
 * two blobs at a time with 1 MiB reads, so the walk runs at hashing speed). Every document is
 * checked structurally and semantically by src/spec/validate.ts.
 *
 * Each blob is checked once per way it is referenced: the cache key is the digest and size, the
 * role (index, manifest, config, layer) and media type it is checked as, the platform an index
 * claims for it, and in deep mode the diff_id it must decompress to; so the whole-layout walk
 * finds at least everything a walk from any one tag finds. Nesting deeper than MAX_INDEX_DEPTH
 * is a problem (src/io/limits.ts); a document is walked once per depth it is met at, so depth
 * is judged on every path. Identical findings are reported once.
 *
 * Contract: never throws for anything found in the layout; every finding is a Problem, in
 * the order the walk met it. Reads only (never writes), with raw fs calls so that it does not
 * trust the code it is checking.
 */
import { constants, promises as fsp, type Dirent } from 'node:fs'
import path from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { digestAlgorithm, digestHex, digestOf, isDigest, VerifyingStream, type Digest } from '../digest/index.js'
import { isErrno, isLadingError, type ErrorCode, quoteName } from '../errors.js'
import { isTempName, readUpTo } from '../io/fs.js'
import { Limiter } from '../io/limit.js'
import { DEFAULT_MAX_DOCUMENT_BYTES, MAX_INDEX_DEPTH, indexDepthMessage } from '../io/limits.js'
import { ProgressStream, type ProgressCallback } from '../io/progress.js'
import { pointerJoin } from '../spec/json-pointer.js'
import { Annotation, MediaType, isConfigMediaType, isIndexMediaType, isManifestMediaType, layerInfo } from '../spec/media-types.js'
import { parseJson } from '../spec/parse.js'
import { platformMatches } from '../spec/platform.js'
import type { Descriptor, ImageConfig, Manifest, Platform } from '../spec/types.js'
import { checkConfig, checkImage, checkIndex, checkLayoutFile, checkManifest, checkPlatformAgrees, type Problem } from '../spec/validate.js'

export interface ValidateLayoutOptions {
  /** Validate only the image(s) tagged `tag` (a ref.name in index.json). */
  tag?: string
  /** Validate only the manifest or index with this digest. */
  digest?: string
  /** Below the selected root, follow only index entries for this platform. */
  platform?: Platform
  /** Blobs hashed at the same time (default 2: this machine class has 2 cores). */
  concurrency?: number
  /** Cap for JSON documents (default 4 MiB). */
  maxDocumentBytes?: number
  /**
   * Also decompress every layer and check it against its config's diff_id (slower: bound by
   * gunzip/zstd rather than by hashing).
   */
  deep?: boolean
  /** Progress of each layer or blob hashed (action 'verify'); none when absent (no cost then). */
  onProgress?: ProgressCallback
}

export interface ValidateLayoutResult {
  problems: Problem[]
  checked: { blobs: number; bytes: number }
}

export type DocumentType = 'manifest' | 'index' | 'config' | 'layout'

const READ_CHUNK = 1024 * 1024
/** Enough of a layer's start to recognise gzip, zstd or a tar header (io/compression.ts DETECT_BYTES). */
const HEAD_BYTES = 512
/** O_NONBLOCK keeps a FIFO planted as a blob from hanging the open; O_NOFOLLOW refuses symlinks. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK

type Kind = 'index' | 'manifest' | 'config' | 'layer' | 'blob'

interface Ref {
  desc: Descriptor
  /** Document that references the blob, and the pointer to the descriptor inside it. */
  from: string
  pointer: string
  kind: Kind
  /** Platform an index claimed for this manifest, to compare with its config. */
  platform?: Platform
  /** Deep mode: the diff_id the decompressed layer must hash to, and where it is written. */
  diffId?: { digest: Digest; source: string; pointer: string }
  /** Indexes above this descriptor (index.json not counted). */
  depth: number
}

/** A problem collector that keeps the walk's order even though blobs are hashed concurrently. */
class Findings {
  readonly #slots: Problem[][] = []
  slot(): Problem[] {
    const s: Problem[] = []
    this.#slots.push(s)
    return s
  }
  /** Every problem once, in walk order (a document walked again deeper finds the same ones). */
  all(): Problem[] {
    const seen = new Set<string>()
    return this.#slots.flat().filter((p) => {
      const k = JSON.stringify([p.source, p.pointer, p.code, p.message])
      if (seen.has(k)) return false
      seen.add(k)
      return true
    })
  }
}

function problem(source: string, pointer: string, code: ErrorCode, message: string): Problem {
  return { source, pointer, code, message }
}

function blobSource(d: string, kind: Kind): string {
  return `blob ${d} (${kind})`
}

function kindOf(mediaType: string): Kind {
  if (isIndexMediaType(mediaType)) return 'index'
  // Schema 1 is read as a manifest so that checkManifest refuses it by name (UNSUPPORTED).
  if (isManifestMediaType(mediaType) || mediaType === MediaType.DockerManifestV1 || mediaType === MediaType.DockerManifestV1Signed) return 'manifest'
  if (isConfigMediaType(mediaType)) return 'config'
  if (layerInfo(mediaType)) return 'layer'
  return 'blob'
}

/** Run at most `n` tasks at a time. */
/** Tasks under the one limiter (io/limit.ts), every one run even after a failure. */
class Pool {
  readonly #limiter: Limiter
  readonly #all: Promise<void>[] = []
  constructor(n: number) {
    this.#limiter = new Limiter(Math.max(1, Math.floor(n) || 1), { stopAfterFailure: false })
  }
  add(task: () => Promise<void>): void {
    this.#all.push(this.#limiter.run(task))
  }
  /** Wait for every task, including tasks added by running tasks. */
  async drain(): Promise<void> {
    for (let i = 0; i < this.#all.length; i++) await this.#all[i]
  }
}

type Opened = { fh: fsp.FileHandle; size: number } | { problem: string; code: ErrorCode }

/** Open a blob file, refusing anything that is not a regular file. */
async function openBlob(file: string): Promise<Opened> {
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(file, OPEN_FLAGS)
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return { problem: 'is missing', code: 'BLOB_UNKNOWN' }
    if (isErrno(e, 'ELOOP')) return { problem: 'is a symbolic link; blobs must be regular files', code: 'INVALID_LAYOUT' }
    return { problem: `cannot be opened: ${(e as Error).message}`, code: 'INVALID_LAYOUT' }
  }
  const st = await fh.stat()
  if (!st.isFile()) {
    await fh.close()
    const what = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'not a regular file'
    return { problem: `is ${what}; blobs must be regular files`, code: 'INVALID_LAYOUT' }
  }
  return { fh, size: st.size }
}

/** Read a small file whole, refusing it before reading when larger than `max`. */
async function readSmall(fh: fsp.FileHandle, size: number, max: number): Promise<Buffer | undefined> {
  if (size > max) return undefined
  return readUpTo(fh, size)
}

/** Hash a blob through the one VerifyingStream (no expectation: the caller compares, to name the referrer). */
async function hashBlob(fh: fsp.FileHandle, expected: Digest, counter?: ProgressStream): Promise<{ digest: Digest; bytes: number; head: Buffer }> {
  const verify = new VerifyingStream({}, digestAlgorithm(expected))
  let bytes = 0
  // The first bytes are kept (copied: the chunk's memory is reused) to judge the compression.
  let head = Buffer.alloc(0)
  const sink = new Writable({
    highWaterMark: READ_CHUNK,
    write(chunk: Buffer, _e, cb) {
      if (head.length < HEAD_BYTES) head = Buffer.concat([head, chunk.subarray(0, HEAD_BYTES - head.length)])
      bytes += chunk.length
      cb()
    },
  })
  const read = fh.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false, start: 0 })
  if (counter) await pipeline(read, counter, verify, sink)
  else await pipeline(read, verify, sink)
  return { digest: verify.result!.digest, bytes, head }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Is this descriptor usable for a blob lookup (valid digest, sane size)? Structural checks report the rest. */
function usable(d: unknown): d is Descriptor {
  return isObject(d) && isDigest(d.digest) && typeof d.mediaType === 'string' && typeof d.size === 'number' && Number.isSafeInteger(d.size) && d.size >= 0
}

class Walker {
  readonly #dir: string
  readonly #opts: ValidateLayoutOptions
  readonly #max: number
  readonly #findings = new Findings()
  readonly #pool: Pool
  /** Checks done, by what was checked (see #visit). */
  readonly #seen = new Set<string>()
  /** Digests of every blob referenced, for the blob directory scan. */
  readonly #referenced = new Set<string>()
  #blobs = 0
  #bytes = 0

  constructor(dir: string, opts: ValidateLayoutOptions) {
    this.#dir = dir
    this.#opts = opts
    this.#max = opts.maxDocumentBytes ?? DEFAULT_MAX_DOCUMENT_BYTES
    this.#pool = new Pool(opts.concurrency ?? 2)
  }

  async run(): Promise<ValidateLayoutResult> {
    await this.#checkLayoutFile()
    const index = await this.#readIndexJson()
    if (index !== undefined) this.#selectRoots(index)
    await this.#pool.drain()
    if (this.#opts.tag === undefined && this.#opts.digest === undefined) await this.#scanBlobDirs()
    return { problems: this.#findings.all(), checked: { blobs: this.#blobs, bytes: this.#bytes } }
  }

  /**
   * image-layout.md §Blobs: every entry of blobs/<alg>/ is a blob, so one that is a symlink or
   * not a regular file is a problem even when nothing references it (reachable ones were
   * reported at their reference). Temp files of writers in progress are not blobs yet.
   */
  async #scanBlobDirs(): Promise<void> {
    const out = this.#findings.slot()
    const blobs = path.join(this.#dir, 'blobs')
    let algs: Dirent[]
    try {
      algs = await fsp.readdir(blobs, { withFileTypes: true })
    } catch (e) {
      if (isErrno(e, 'ENOENT')) out.push(problem('blobs', '', 'INVALID_LAYOUT', 'the blobs directory is missing (image-layout.md §Blobs)'))
      else if (isErrno(e, 'ENOTDIR')) out.push(problem('blobs', '', 'INVALID_LAYOUT', 'is not a directory'))
      else throw e
      return
    }
    const seen = this.#referenced
    for (const alg of algs) {
      const rel = path.join('blobs', alg.name)
      if (!alg.isDirectory()) {
        out.push(
          problem(
            rel,
            '',
            'INVALID_LAYOUT',
            `is ${alg.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; blobs/ holds one directory per digest algorithm`,
          ),
        )
        continue
      }
      for (const entry of await fsp.readdir(path.join(blobs, alg.name), { withFileTypes: true })) {
        if (entry.isFile() || isTempName(entry.name)) continue
        if (seen.has(`${alg.name}:${entry.name}`)) continue
        const what = entry.isSymbolicLink() ? 'a symbolic link' : entry.isDirectory() ? 'a directory' : entry.isFIFO() ? 'a FIFO' : 'not a regular file'
        out.push(problem(path.join(rel, entry.name), '', 'INVALID_LAYOUT', `is ${what}; blobs must be regular files`))
      }
    }
  }

  #blobPath(d: Digest): string {
    return path.join(this.#dir, 'blobs', digestAlgorithm(d), digestHex(d))
  }

  /** image-layout.md §oci-layout file: REQUIRED, imageLayoutVersion "1.0.0". */
  async #checkLayoutFile(): Promise<void> {
    const out = this.#findings.slot()
    const doc = await this.#readTopFile('oci-layout', out, 'INVALID_LAYOUT')
    if (doc !== undefined) out.push(...checkLayoutFile(doc, 'oci-layout'))
  }

  /** image-layout.md §index.json file: REQUIRED, an image index. */
  async #readIndexJson(): Promise<Record<string, unknown> | undefined> {
    const out = this.#findings.slot()
    const doc = await this.#readTopFile('index.json', out, 'INVALID_INDEX')
    if (doc === undefined) return undefined
    // image-layout.md §index.json: an OCI image index (its mediaType, when present, says so).
    out.push(...checkIndex(doc, 'index.json', MediaType.OciIndex))
    if (!isObject(doc)) return undefined
    // A tag must name one thing: skopeo and containerd refuse a ref.name that matches twice.
    const tagged = new Map<string, number>()
    if (Array.isArray(doc.manifests)) {
      doc.manifests.forEach((d, i) => {
        const tag = isObject(d) && isObject(d.annotations) ? d.annotations[Annotation.RefName] : undefined
        if (typeof tag !== 'string') return
        const prev = tagged.get(tag)
        if (prev === undefined) tagged.set(tag, i)
        else
          out.push(
            problem(
              'index.json',
              pointerJoin('/manifests', i, 'annotations', Annotation.RefName),
              'TAG_INVALID',
              `tag ${quoteName(tag)} is also on /manifests/${prev}; a tag must name one image`,
            ),
          )
      })
    }
    return doc
  }

  async #readTopFile(name: string, out: Problem[], code: ErrorCode): Promise<unknown> {
    const opened = await openBlob(path.join(this.#dir, name))
    if ('problem' in opened) {
      out.push(
        problem(
          name,
          '',
          opened.code === 'BLOB_UNKNOWN' ? code : opened.code,
          opened.code === 'BLOB_UNKNOWN' ? `is missing: ${this.#dir} is not an OCI image layout (image-layout.md)` : opened.problem,
        ),
      )
      return undefined
    }
    try {
      const bytes = await readSmall(opened.fh, opened.size, this.#max)
      if (bytes === undefined) {
        out.push(problem(name, '', 'SIZE_LIMIT', `is ${opened.size} bytes, larger than the limit of ${this.#max} bytes`))
        return undefined
      }
      return parseJson(bytes, name, this.#max)
    } catch (e) {
      if (isLadingError(e)) out.push(problem(name, '', e.code, stripSource(e.message, name)))
      else throw e
      return undefined
    } finally {
      await opened.fh.close()
    }
  }

  /** Roots: all of index.json, or the entries selected by tag or digest. */
  #selectRoots(index: Record<string, unknown>): void {
    const entries = Array.isArray(index.manifests) ? index.manifests : []
    const { tag, digest } = this.#opts
    let n = 0
    entries.forEach((d, i) => {
      if (!usable(d)) return
      if (tag !== undefined && d.annotations?.[Annotation.RefName] !== tag) return
      if (digest !== undefined && d.digest !== digest) return
      n++
      const ref: Ref = { desc: d, from: 'index.json', pointer: pointerJoin('/manifests', i), kind: kindOf(d.mediaType), depth: 0 }
      if (d.platform) ref.platform = d.platform
      this.#visit(ref)
    })
    if (n > 0 || (tag === undefined && digest === undefined)) return
    if (tag !== undefined) {
      this.#findings.slot().push(problem('index.json', '/manifests', 'NOT_FOUND', `no entry has the tag ${quoteName(tag)} (annotation ${Annotation.RefName})`))
      return
    }
    // A digest not listed in index.json may still name a stored manifest or index.
    if (!isDigest(digest)) {
      this.#findings.slot().push(problem('index.json', '/manifests', 'DIGEST_INVALID', `invalid digest ${quoteName(digest)}`))
      return
    }
    this.#visitByDigest(digest)
  }

  #visitByDigest(digest: Digest): void {
    const out = this.#findings.slot()
    this.#pool.add(async () => {
      const opened = await openBlob(this.#blobPath(digest))
      if ('problem' in opened) {
        out.push(problem('index.json', '/manifests', 'NOT_FOUND', `no manifest or index with digest ${digest}: blob ${opened.problem}`))
        return
      }
      let mediaType: string = MediaType.OciManifest
      try {
        const bytes = await readSmall(opened.fh, opened.size, this.#max)
        const v = bytes && parseJson(bytes, digest, this.#max)
        if (isObject(v) && typeof v.mediaType === 'string') mediaType = v.mediaType
        else if (isObject(v) && 'manifests' in v) mediaType = MediaType.OciIndex
      } catch {
        // The visit below reports why the document is unreadable.
      } finally {
        await opened.fh.close()
      }
      this.#visit({ desc: { mediaType, digest, size: opened.size }, from: 'command line', pointer: '', kind: kindOf(mediaType), depth: 0 })
    })
  }

  /**
   * Schedule the check of one referenced blob, once per way it is referenced: digest and size
   * (a second size is judged too), role and media type (a manifest claimed to be an index is
   * checked as one), the platform claimed for it, the diff_id deep mode checks it against, and
   * for a document the depth it is met at.
   */
  #visit(ref: Ref): void {
    const d = ref.desc
    this.#referenced.add(d.digest)
    const document = ref.kind === 'index' || ref.kind === 'manifest'
    if (document && ref.depth > MAX_INDEX_DEPTH) {
      this.#findings.slot().push(problem(ref.from, ref.pointer, 'INVALID_INDEX', `${ref.kind} blob ${d.digest}: ${indexDepthMessage()}`))
      return
    }
    // A walk at each depth finds different things below (what is too deep from here), so a
    // document is walked once per depth: at most MAX_INDEX_DEPTH + 1 times, never exponentially.
    const key = JSON.stringify([d.digest, d.size, ref.kind, d.mediaType, ref.platform ?? null, ref.diffId?.digest ?? null, document ? ref.depth : 0])
    if (this.#seen.has(key)) return
    this.#seen.add(key)
    const out = this.#findings.slot()
    this.#pool.add(() =>
      this.#check(ref, out).catch((e: unknown) => {
        // An I/O error (EIO, EACCES) on one blob is a finding about that blob, not the end of the walk.
        out.push(
          problem(
            ref.from,
            ref.pointer,
            isLadingError(e) ? e.code : 'INVALID_LAYOUT',
            `${ref.kind} blob ${d.digest} cannot be checked: ${(e as Error).message}`,
          ),
        )
      }),
    )
  }

  async #check(ref: Ref, out: Problem[]): Promise<void> {
    const d = ref.desc
    const file = this.#blobPath(d.digest)
    const opened = await openBlob(file)
    if ('problem' in opened) {
      // layer.md §Non-distributable layers: such blobs may legitimately be absent when urls say where they live.
      const foreign = layerInfo(d.mediaType)?.nondistributable === true && Array.isArray(d.urls) && d.urls.length > 0
      if (opened.code === 'BLOB_UNKNOWN' && foreign) return
      out.push(
        problem(
          ref.from,
          ref.pointer,
          opened.code,
          `${ref.kind} blob ${d.digest} ${opened.problem} (${path.join('blobs', digestAlgorithm(d.digest), digestHex(d.digest))})`,
        ),
      )
      return
    }
    this.#blobs++
    try {
      if (opened.size !== d.size) {
        // A size mismatch already proves the content differs; hashing it would add nothing.
        out.push(
          problem(ref.from, pointerJoin(ref.pointer, 'size'), 'SIZE_MISMATCH', `descriptor says ${d.size} bytes but blob ${d.digest} has ${opened.size} bytes`),
        )
        return
      }
      if (ref.diffId) {
        await this.#checkLayerDeep(opened.fh, ref, ref.diffId, out, this.#counter(d))
        this.#done(d)
        return
      }
      if (ref.kind === 'layer' || ref.kind === 'blob') {
        const { digest, bytes, head } = await hashBlob(opened.fh, d.digest, this.#counter(d))
        this.#done(d)
        this.#bytes += bytes
        if (digest !== d.digest) {
          out.push(problem(ref.from, pointerJoin(ref.pointer, 'digest'), 'DIGEST_MISMATCH', `${ref.kind} blob ${d.digest}: content hashes to ${digest}`))
          return
        }
        const expected = ref.kind === 'layer' ? layerInfo(d.mediaType)?.compression : undefined
        if (expected !== undefined) {
          // layer.md: the media type says how the tar is compressed; a mislabelled layer cannot be
          // unpacked. The first bytes tell, at no extra read (deep mode decompresses and sees more).
          const { detectCompression } = await import('../io/compression.js')
          const found = detectCompression(head)
          if (found !== expected && !(expected === 'none' && found === undefined)) {
            out.push(
              problem(
                ref.from,
                pointerJoin(ref.pointer, 'mediaType'),
                'COMPRESSION_MISMATCH',
                `${d.mediaType} says ${expected} but layer blob ${d.digest} is ${found === undefined ? 'neither gzip, zstd nor tar' : found === 'none' ? 'an uncompressed tar' : found}`,
              ),
            )
          }
        }
        return
      }
      const bytes = await readSmall(opened.fh, opened.size, this.#max)
      const source = blobSource(d.digest, ref.kind)
      if (bytes === undefined) {
        out.push(problem(source, '', 'SIZE_LIMIT', `document is ${opened.size} bytes, larger than the limit of ${this.#max} bytes`))
        return
      }
      this.#bytes += bytes.length
      const actual = digestOf(bytes, digestAlgorithm(d.digest))
      if (actual !== d.digest) {
        out.push(problem(ref.from, pointerJoin(ref.pointer, 'digest'), 'DIGEST_MISMATCH', `${ref.kind} blob ${d.digest}: content hashes to ${actual}`))
      }
      let value: unknown
      try {
        value = parseJson(bytes, source, this.#max)
      } catch (e) {
        if (!isLadingError(e)) throw e
        out.push(problem(source, '', e.code, stripSource(e.message, source)))
        return
      }
      if (ref.kind === 'index') this.#checkIndexDoc(value, source, d, out, ref.depth)
      else if (ref.kind === 'manifest') await this.#checkManifestDoc(value, source, ref, out)
    } finally {
      await opened.fh.close()
    }
  }

  #checkIndexDoc(value: unknown, source: string, d: Descriptor, out: Problem[], depth: number): void {
    out.push(...checkIndex(value, source, d.mediaType))
    if (!isObject(value) || !Array.isArray(value.manifests)) return
    const want = this.#opts.platform
    let matched = 0
    value.manifests.forEach((m, i) => {
      if (!usable(m)) return
      const kind = kindOf(m.mediaType)
      // Platform selection applies to image manifests; nested indexes are always descended.
      if (want && kind === 'manifest' && !platformMatches(want, m.platform)) return
      if (kind === 'manifest') matched++
      const ref: Ref = { desc: m, from: source, pointer: pointerJoin('/manifests', i), kind, depth: depth + 1 }
      if (m.platform) ref.platform = m.platform
      this.#visit(ref)
    })
    if (want && matched === 0 && value.manifests.some((m) => usable(m) && kindOf(m.mediaType) === 'manifest')) {
      out.push(
        problem(
          source,
          '/manifests',
          'PLATFORM_NOT_FOUND',
          `no manifest for platform ${want.os}/${want.architecture}${want.variant ? '/' + want.variant : ''}`,
        ),
      )
    }
    if (isObject(value.subject) && usable(value.subject)) {
      this.#visit({ desc: value.subject, from: source, pointer: '/subject', kind: kindOf(value.subject.mediaType), depth })
    }
  }

  async #checkManifestDoc(value: unknown, source: string, ref: Ref, out: Problem[]): Promise<void> {
    out.push(...checkManifest(value, source, ref.desc.mediaType))
    if (!isObject(value)) return
    // The config comes first: with `deep`, each layer is checked against its diff_id.
    const config = await this.#checkConfigOf(value, source, ref)
    const diffIds = config && Array.isArray(config.rootfs?.diff_ids) ? config.rootfs.diff_ids : undefined
    const layers = Array.isArray(value.layers) ? value.layers : []
    const c = value.config
    layers.forEach((l, i) => {
      if (!usable(l)) return
      const layerRef: Ref = { desc: l, from: source, pointer: pointerJoin('/layers', i), kind: 'layer', depth: 0 }
      const diffId = diffIds?.length === layers.length ? diffIds[i] : undefined
      if (this.#opts.deep && usable(c) && isDigest(diffId) && layerInfo(l.mediaType)) {
        layerRef.diffId = { digest: diffId, source: blobSource(c.digest, 'config'), pointer: pointerJoin('/rootfs/diff_ids', i) }
      }
      this.#visit(layerRef)
    })
    if (isObject(value.subject) && usable(value.subject)) {
      this.#visit({ desc: value.subject, from: source, pointer: '/subject', kind: kindOf(value.subject.mediaType), depth: ref.depth })
    }
  }

  /** Read and check the config of an image manifest; returns it when it is an object. */
  async #checkConfigOf(value: Record<string, unknown>, source: string, ref: Ref): Promise<ImageConfig | undefined> {
    const c = value.config
    if (!usable(c)) return undefined
    if (!isConfigMediaType(c.mediaType)) {
      // manifest.md §config: an unknown config type is opaque data; only its bytes are checked.
      this.#visit({ desc: c, from: source, pointer: '/config', kind: 'blob', depth: 0 })
      return undefined
    }
    this.#referenced.add(c.digest)
    const key = JSON.stringify([c.digest, c.size, 'config', c.mediaType])
    const first = !this.#seen.has(key)
    this.#seen.add(key)
    // A config shared by several manifests is read and checked for each (it is small): checkImage
    // and the diff_ids of deep mode need it beside each manifest; Findings drops repeated findings.
    const cout = this.#findings.slot()
    const opened = await openBlob(this.#blobPath(c.digest))
    if ('problem' in opened) {
      cout.push(
        problem(
          source,
          '/config',
          opened.code,
          `config blob ${c.digest} ${opened.problem} (${path.join('blobs', digestAlgorithm(c.digest), digestHex(c.digest))})`,
        ),
      )
      return undefined
    }
    if (first) this.#blobs++
    let bytes: Buffer | undefined
    try {
      if (opened.size !== c.size) {
        cout.push(problem(source, '/config/size', 'SIZE_MISMATCH', `descriptor says ${c.size} bytes but blob ${c.digest} has ${opened.size} bytes`))
        return undefined
      }
      bytes = await readSmall(opened.fh, opened.size, this.#max)
    } finally {
      await opened.fh.close()
    }
    const csource = blobSource(c.digest, 'config')
    if (bytes === undefined) {
      cout.push(problem(csource, '', 'SIZE_LIMIT', `document is ${opened.size} bytes, larger than the limit of ${this.#max} bytes`))
      return undefined
    }
    if (first) this.#bytes += bytes.length
    const actual = digestOf(bytes, digestAlgorithm(c.digest))
    if (actual !== c.digest) cout.push(problem(source, '/config/digest', 'DIGEST_MISMATCH', `config blob ${c.digest}: content hashes to ${actual}`))
    let config: unknown
    try {
      config = parseJson(bytes, csource, this.#max)
    } catch (e) {
      if (!isLadingError(e)) throw e
      cout.push(problem(csource, '', e.code, stripSource(e.message, csource)))
      return undefined
    }
    cout.push(...checkConfig(config, csource))
    if (!isObject(config)) return undefined
    const cfg = config as unknown as ImageConfig
    if (Array.isArray(value.layers)) {
      // The same config under two manifests with different layers is a problem of each pairing.
      cout.push(...checkImage(value as unknown as Manifest, cfg, csource))
    }
    if (ref.platform && typeof cfg.os === 'string' && typeof cfg.architecture === 'string') {
      lateSlot(this.#findings).push(...checkPlatformAgrees(ref.platform, cfg, ref.from, ref.pointer))
    }
    return cfg
  }

  /**
   * Deep mode (layer.md §Changesets, config.md rootfs.diff_ids): one pass over a layer hashes
   * the stored (compressed) bytes and, after decompression, the tar bytes, which must hash to
   * the config's diff_id.
   */
  /** Progress of one blob hashed: its start, and the stream counting its bytes (none unless asked). */
  #counter(d: Descriptor): ProgressStream | undefined {
    const emit = this.#opts.onProgress
    if (!emit) return undefined
    emit({ type: 'blob-start', digest: d.digest, size: d.size, mediaType: d.mediaType, action: 'verify' })
    return new ProgressStream((bytes) => emit({ type: 'blob-progress', digest: d.digest, bytes, size: d.size }))
  }

  #done(d: Descriptor): void {
    this.#opts.onProgress?.({ type: 'blob-done', digest: d.digest, size: d.size, stored: { digest: d.digest, size: d.size, mediaType: d.mediaType } })
  }

  async #checkLayerDeep(fh: fsp.FileHandle, ref: Ref, diffId: NonNullable<Ref['diffId']>, out: Problem[], counter?: ProgressStream): Promise<void> {
    const d = ref.desc
    const stored = new VerifyingStream({}, digestAlgorithm(d.digest))
    const tarHash = new VerifyingStream({}, digestAlgorithm(diffId.digest))
    const file = fh.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false, start: 0 })
    file.on('error', (e) => stored.destroy(e))
    const name = `layer blob ${d.digest}`
    let bytes = 0
    try {
      // Loaded only in deep mode: the plain walk needs no codecs (and starts faster without them).
      const { decompress } = await import('../io/compression.js')
      const tar = await decompress((counter ? file.pipe(counter) : file).pipe(stored), layerInfo(d.mediaType)?.compression, name)
      await pipeline(
        tar,
        tarHash,
        new Writable({
          highWaterMark: READ_CHUNK,
          write(chunk: Buffer, _e, cb) {
            bytes += chunk.length
            cb()
          },
        }),
      )
    } catch (e) {
      file.destroy()
      if (!isLadingError(e)) throw e
      out.push(problem(ref.from, ref.pointer, e.code, e.message))
      return
    }
    this.#bytes += d.size
    const got = stored.result!.digest
    if (got !== d.digest) {
      out.push(problem(ref.from, pointerJoin(ref.pointer, 'digest'), 'DIGEST_MISMATCH', `${ref.kind} blob ${d.digest}: content hashes to ${got}`))
      return
    }
    const tarDigest = tarHash.result!.digest
    if (tarDigest !== diffId.digest) {
      out.push(
        problem(
          diffId.source,
          diffId.pointer,
          'DIGEST_MISMATCH',
          `is ${diffId.digest} but layer ${d.digest} decompresses to ${bytes} bytes with digest ${tarDigest}`,
        ),
      )
    }
  }
}

/** A fresh slot for problems found late (after the walk moved on). */
function lateSlot(f: Findings): Problem[] {
  return f.slot()
}

/** parse.ts messages start with `${source}: ${pointer}: `; a Problem carries those separately. */
function stripSource(message: string, source: string): string {
  const prefix = `${source}: /: `
  return message.startsWith(prefix) ? message.slice(prefix.length) : message
}

/** Validate an OCI image layout (or the images selected by tag/digest/platform). */
export async function validateLayout(dir: string, opts: ValidateLayoutOptions = {}): Promise<ValidateLayoutResult> {
  return new Walker(dir, opts).run()
}

/** Validate one document on its own (`lading validate --type`); a missing file throws NOT_FOUND. */
export async function validateDocument(file: string, type: DocumentType, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES): Promise<Problem[]> {
  const source = file
  const opened = await openBlob(file)
  if ('problem' in opened) {
    if (opened.code === 'BLOB_UNKNOWN') return [problem(source, '', 'NOT_FOUND', 'file does not exist')]
    return [problem(source, '', opened.code, opened.problem.replace('blobs must be', 'documents must be'))]
  }
  let value: unknown
  try {
    const bytes = await readSmall(opened.fh, opened.size, maxBytes)
    if (bytes === undefined) return [problem(source, '', 'SIZE_LIMIT', `document is ${opened.size} bytes, larger than the limit of ${maxBytes} bytes`)]
    value = parseJson(bytes, source, maxBytes)
  } catch (e) {
    if (!isLadingError(e)) throw e
    return [problem(source, '', e.code, stripSource(e.message, source))]
  } finally {
    await opened.fh.close()
  }
  switch (type) {
    case 'manifest':
      return checkManifest(value, source)
    case 'index':
      return checkIndex(value, source)
    case 'config':
      return checkConfig(value, source)
    case 'layout':
      return checkLayoutFile(value, source)
  }
}
