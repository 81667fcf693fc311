/**
 * The one copy engine: moves an image (or a whole index) from any ImageSource to any
 * ImageDestination (DESIGN.md §Interfaces).
 *
 * Contracts:
 * - Every byte read from the source is verified by the source's own streams (size + digest);
 *   a recompressed layer is additionally checked against its config diff_id while it streams,
 *   and the destination verifies what it stores against the digest we expect.
 * - Nothing is held whole in memory except manifests and configs (bounded to 4 MiB).
 * - Order: blobs (at most `concurrency` at once), then child manifests, then referrers, then the
 *   top-level manifest (once per tag), then commit(). Destinations make blobs visible only once
 *   verified and name the image only on commit, so an interrupted copy leaves a valid
 *   destination and a rerun skips the blobs already there.
 * - Each manifest, index and config is fetched and planned once per copy, however often nested
 *   indexes list it (a hostile index repeating its children would otherwise make the copy
 *   exponential); depth and the descriptors visited are capped (src/io/limits.ts).
 * - A change the caller did not ask for is never silent: with `preserveDigests`, any conversion
 *   or recompression that would change a digest is refused before a single blob moves.
 */
import { Readable, Transform, pipeline } from 'node:stream'
import { ProgressStream } from '../io/progress.js'
import { digestOf, type Digest } from '../digest/digest.js'
import { carryAttestation, verifiedStream } from '../digest/verify.js'
import { LadingError } from '../errors.js'
import { atomicWriteFile } from '../io/fs.js'
import { Limiter } from '../io/limit.js'
import { DEFAULT_MAX_DOCUMENT_BYTES, VisitBudget, checkIndexDepth, readAllLimited } from '../io/limits.js'
import type { compress as compressFn, decompress as decompressFn } from '../io/compression.js'
import { convertIndex, convertManifest, indexMediaTypeFor, manifestMediaTypeFor, type ManifestFormat } from '../spec/convert.js'
import { MediaType, isConfigMediaType, isIndexMediaType, isManifestMediaType, layerInfo, layerMediaType, type Compression } from '../spec/media-types.js'
import { parseConfig, parseIndex, parseManifest } from '../spec/parse.js'
import { formatPlatform, hostPlatform, platformMatches } from '../spec/platform.js'
import type { Descriptor, Index, Manifest, Platform, RawManifest } from '../spec/types.js'
import { displayReference as describeRef } from '../transport/reference.js'
import type { ImageDestination, ImageReference, ImageSource } from '../transport/types.js'
import type { CopyEvent, ProgressCallback } from './events.js'

export type { CopyEvent, ProgressCallback } from './events.js'

export interface CopyOptions {
  /** Copy every image of an index (and the index itself). */
  all?: boolean
  /** Images of an index to copy; one platform copies that image alone, several copy a reduced index. Default: the host's. */
  platforms?: Platform[]
  /** Convert manifests (and the config's media type) to OCI or Docker v2s2. Digests change; diff_ids do not. */
  format?: ManifestFormat
  /** Refuse any change that would alter a digest (conversion, recompression, a reduced index). */
  preserveDigests?: boolean
  /**
   * Store EVERY layer in this compression, whatever the destination prefers (diff_ids unchanged,
   * blob digests change). The CLI's --dest-decompress is `destCompress: 'none'`.
   */
  destCompress?: Compression
  /**
   * The compression of layers the destination compresses (skopeo's --dest-compress-format;
   * default gzip): uncompressed layers, and compressed ones in another format, which are
   * recompressed (as skopeo does for oci: and docker://).
   */
  destCompressFormat?: Exclude<Compression, 'none'>
  /**
   * Compress layers even where the destination keeps them as they are (skopeo's --dest-compress,
   * which only dir: needs: oci:, oci-archive: and docker:// compress by default).
   */
  compressLayers?: boolean
  /** Level for any compression the copy does (gzip 1-9, zstd -7..22). */
  destCompressLevel?: number
  /** Further tags for the top-level image (docker-archive: NAME:TAG or a tag for the reference's name). */
  additionalTags?: string[]
  /** Write the digest of the top-level manifest written to this file. */
  digestFile?: string
  /** Also copy manifests whose subject is a copied manifest (source.listReferrers). */
  referrers?: boolean
  /** Blobs moving at once (default 3). */
  concurrency?: number
  onProgress?: ProgressCallback
}

export interface CopyResult {
  /** The top-level manifest (or index) the destination now holds. */
  digest: Digest
  mediaType: string
  size: number
  /** The image manifests written (with their platform, when copied from an index). */
  images: Array<{ digest: Digest; mediaType: string; platform?: Platform }>
  blobs: { copied: number; existed: number; bytesCopied: number }
  referrers: number
}

/** A document as the destination holds it: its bytes, descriptor, and whether they differ from the source's. */
interface CopiedManifest {
  raw: RawManifest
  desc: Descriptor
  changed: boolean
}

/** `from` piped into `to`, an error of either destroying both and surfacing on `to`. */
function chain<T extends Transform>(from: Readable, to: T): T {
  pipeline(from, to, () => {})
  return to
}

function familyOf(mediaType: string): ManifestFormat | undefined {
  if (mediaType === MediaType.OciManifest || mediaType === MediaType.OciIndex) return 'oci'
  if (mediaType === MediaType.DockerManifest || mediaType === MediaType.DockerManifestList) return 'v2s2'
  return undefined
}

function sameRegistry(a: ImageReference, b: ImageReference): a is Extract<ImageReference, { transport: 'docker' }> {
  return a.transport === 'docker' && b.transport === 'docker' && a.registry === b.registry && a.repository !== b.repository
}

class CopyRun {
  readonly #src: ImageSource
  readonly #dest: ImageDestination
  readonly #opts: CopyOptions
  readonly #limiter: Limiter
  /** Blob copies in flight or done, by source digest + target compression: duplicate layers move once. */
  readonly #blobs = new Map<string, Promise<Descriptor>>()
  readonly stats = { copied: 0, existed: 0, bytesCopied: 0 }
  readonly images: CopyResult['images'] = []
  referrers = 0
  /** Source manifests copied byte for byte: the subjects whose referrers can follow them. */
  readonly unchanged: Digest[] = []
  /** Children of indexes, copied once per digest (nested indexes may list one child many times). */
  readonly #children = new Map<string, Promise<CopiedManifest>>()
  /** Index levels below each document copied (0 for a manifest): judges depth on a memo hit. */
  readonly #heights = new Map<string, number>()
  /** Configs read from the source, once per digest. */
  readonly #configs = new Map<string, Promise<Buffer>>()
  /** Referrers copied as they are, once per digest. */
  readonly #asIs = new Map<string, Promise<void>>()
  readonly budget: VisitBudget

  constructor(src: ImageSource, dest: ImageDestination, opts: CopyOptions) {
    this.#src = src
    this.#dest = dest
    this.#opts = opts
    this.#limiter = new Limiter(opts.concurrency ?? 3)
    this.budget = new VisitBudget(`copy from ${describeRef(src.ref)}`)
  }

  emit(e: CopyEvent): void {
    if (e.type === 'blob-progress' && !this.#bytesMoved) {
      this.#bytesMoved = true
      for (const f of this.#movingWaiters.splice(0)) f()
    }
    this.#opts.onProgress?.(e)
  }

  /** Set by the first blob-progress event of the run: some blob's bytes are moving. */
  #bytesMoved = false
  readonly #movingWaiters: Array<() => void> = []
  #bytesMoving(): Promise<void> {
    if (this.#bytesMoved) return Promise.resolve()
    return new Promise((resolve) => this.#movingWaiters.push(resolve))
  }

  /** The format a document of `mediaType` is written in; undefined = as it is. */
  #targetFormat(mediaType: string): ManifestFormat | undefined {
    const want = this.#opts.format
    if (want !== undefined) return familyOf(mediaType) === want ? undefined : want
    const caps = this.#dest.capabilities.manifestTypes
    if (caps.includes(mediaType)) return undefined
    const kindOk = isIndexMediaType(mediaType) ? isIndexMediaType : isManifestMediaType
    const alt = caps.find((t) => kindOk(t))
    const f = alt === undefined ? undefined : familyOf(alt)
    if (f === undefined) throw new LadingError('UNSUPPORTED', `${describeRef(this.#dest.ref)} cannot store ${mediaType} documents`)
    return f
  }

  /**
   * What a layer in `from` is stored as, absent `destCompress`. As skopeo (containers/image
   * copy/compression.go): a destination that compresses (oci:, oci-archive:, docker://; dir: with
   * compressLayers) compresses uncompressed layers and recompresses layers in another format
   * than an explicit destCompressFormat; docker-archive: stores them uncompressed (its only
   * kind); dir: keeps them as they are. --preserve-digests keeps every layer as it is (and refuses
   * a compression asked for).
   */
  #layerCompression(from: Compression): Compression {
    const caps = this.#dest.capabilities
    const natural = caps.compressions.includes(from) ? from : caps.compressions[0]!
    const compresses = caps.compressUncompressed === true || this.#opts.compressLayers === true
    // Only a compression the caller asked for is attempted under preserveDigests (and refused).
    const asked = this.#opts.destCompressFormat !== undefined || this.#opts.compressLayers === true
    if (!compresses || (this.#opts.preserveDigests && !asked)) return natural
    const format = this.#opts.destCompressFormat
    if (from === 'none') return caps.compressions.includes(format ?? 'gzip') ? (format ?? 'gzip') : natural
    return format !== undefined && caps.compressions.includes(format) ? format : natural
  }

  #refuseDigestChange(what: string): void {
    if (this.#opts.preserveDigests) throw new LadingError('UNSUPPORTED', `--preserve-digests: refusing to copy: ${what} would change a digest`)
  }

  /** True (and reported) when the destination has the blob, or got it by a cross-repository mount. */
  async #alreadyThere(desc: Descriptor): Promise<boolean> {
    if (await this.#dest.hasBlob(desc)) {
      this.stats.existed++
      this.emit({ type: 'blob-exists', digest: desc.digest, size: desc.size })
      return true
    }
    const src = this.#src.ref
    if (this.#dest.mountBlob && sameRegistry(src, this.#dest.ref) && (await this.#dest.mountBlob(desc, src.repository))) {
      this.stats.existed++
      this.emit({ type: 'blob-skipped', digest: desc.digest, size: desc.size, reason: `mounted from ${src.repository}` })
      return true
    }
    return false
  }

  /** Copy one blob as it is (its digest is preserved). */
  plainBlob(desc: Descriptor): Promise<Descriptor> {
    return this.#blobAsIs(desc, async () => {
      const from = await this.#src.getBlob(desc)
      const body = chain(from, this.#progress(desc))
      // The progress counter passes bytes unchanged, so the source's digest check carries on
      // and the destination does not hash the blob a second time (digest/verify.ts).
      carryAttestation(from, body)
      return body
    })
  }

  /**
   * Put a blob whose digest must not change, once per digest per copy, under the concurrency
   * limit: skipped when the destination has it (or mounts it), reported, checked as stored.
   */
  #blobAsIs(desc: Descriptor, open: () => Promise<Readable>): Promise<Descriptor> {
    const key = `${desc.digest}>=`
    let p = this.#blobs.get(key)
    if (!p) {
      p = this.#limiter.run(async () => {
        if (await this.#alreadyThere(desc)) return desc
        this.emit({ type: 'blob-start', digest: desc.digest, size: desc.size, mediaType: desc.mediaType, action: 'copy' })
        const stored = await this.#dest.putBlob(
          await open(),
          { mediaType: desc.mediaType, digest: desc.digest, size: desc.size },
          { reopen: this.#reopen(desc, open) },
        )
        if (stored.digest !== desc.digest || stored.size !== desc.size) {
          throw new LadingError(
            'DIGEST_MISMATCH',
            `blob ${desc.digest}: destination stored ${stored.digest} (${stored.size} bytes), expected ${desc.size} bytes`,
          )
        }
        this.stats.copied++
        this.stats.bytesCopied += desc.size
        this.emit({ type: 'blob-done', digest: desc.digest, size: desc.size, stored: { digest: stored.digest, size: stored.size, mediaType: desc.mediaType } })
        return { ...desc }
      })
      this.#blobs.set(key, p)
    }
    return p
  }

  /** `open` again, for a destination that starts a failed upload over (said in a warning). */
  #reopen(desc: Descriptor, open: () => Promise<Readable>): () => Promise<Readable> {
    return () => {
      this.emit({ type: 'warning', message: `blob ${desc.digest}: the upload failed; sending it again` })
      return open()
    }
  }

  #progress(desc: Descriptor): ProgressStream {
    return new ProgressStream((bytes) => this.emit({ type: 'blob-progress', digest: desc.digest, bytes, size: desc.size }))
  }

  /**
   * Copy a layer recompressed from `from` to `to`: source (verified) -> decompress -> check the
   * uncompressed bytes against `diffId` -> compress -> destination, which computes the new digest
   * while it stores. Returns the new descriptor (same family as the source's media type).
   */
  transcodeLayer(desc: Descriptor, from: Compression, to: Compression, docker: boolean, diffId: Digest | undefined): Promise<Descriptor> {
    const key = `${desc.digest}>${to}`
    let p = this.#blobs.get(key)
    if (!p) {
      p = this.#limiter.run(async () => {
        const mediaType = layerMediaType(to, docker)
        this.emit({
          type: 'blob-start',
          digest: desc.digest,
          size: desc.size,
          mediaType: desc.mediaType,
          action: from === 'none' ? 'compress' : to === 'none' ? 'decompress' : 'recompress',
        })
        const name = `layer ${desc.digest}`
        // Loaded here: a copy that moves blobs as they are never needs zlib or zstd.
        const { compress, decompress }: { compress: typeof compressFn; decompress: typeof decompressFn } = await import('../io/compression.js')
        const open = async (): Promise<Readable> => {
          const raw = chain(await this.#src.getBlob(desc), this.#progress(desc))
          let plain = await decompress(raw, from, name)
          // Check the uncompressed bytes against the diff_id on the way. Going to 'none' the
          // destination verifies exactly that digest itself, so the bytes are hashed once, not twice.
          if (diffId !== undefined && to !== 'none') {
            plain = verifiedStream(plain, { digest: diffId, name: `${name} (uncompressed, diff_id)` })
          }
          const level = this.#opts.destCompressLevel
          return compress(plain, to, level !== undefined ? { level } : {})
        }
        const expected = { mediaType, ...(to === 'none' && diffId !== undefined ? { digest: diffId } : {}) }
        const stored = await this.#dest.putBlob(await open(), expected, { reopen: this.#reopen(desc, open) })
        this.stats.copied++
        this.stats.bytesCopied += desc.size
        this.emit({ type: 'blob-done', digest: desc.digest, size: desc.size, stored: { digest: stored.digest, size: stored.size, mediaType } })
        return { ...desc, mediaType, digest: stored.digest, size: stored.size }
      })
      this.#blobs.set(key, p)
    }
    return p
  }

  /** Copy one image manifest and its blobs (and put the manifest, untagged, when `put`). */
  async copyManifest(raw: RawManifest, source: string, put: boolean): Promise<CopiedManifest> {
    const m = parseManifest(raw.bytes, source, raw.mediaType)
    const format = this.#targetFormat(raw.mediaType)
    if (format !== undefined) this.#refuseDigestChange(`converting ${source} from ${raw.mediaType} to ${format === 'oci' ? 'OCI' : 'Docker v2s2'}`)
    const isImage = isConfigMediaType(m.config.mediaType)

    // Read the config (small, bounded) through the source's verifying stream: recompression
    // checks layers against its diff_ids, and it is put from memory, not read twice.
    let diffIds: readonly Digest[] | undefined
    let configBytes: Buffer | undefined
    const plans = m.layers.map((l) => {
      const info = layerInfo(l.mediaType)
      if (!info || info.nondistributable) return { desc: l, to: undefined as Compression | undefined, info }
      const to = this.#opts.destCompress ?? this.#layerCompression(info.compression)
      return { desc: l, to: to === info.compression ? undefined : to, info }
    })
    const recompress = plans.filter((p) => p.to !== undefined)
    if (recompress.length > 0) {
      this.#refuseDigestChange(`recompressing ${recompress.length} layer(s) of ${source} to ${recompress[0]!.to}`)
      if (!isImage) throw new LadingError('UNSUPPORTED', `${source}: cannot recompress the layers of an artifact (config ${m.config.mediaType})`)
    }
    if (format !== undefined) {
      // Convert the planned manifest now: what the target format cannot express (zstd in v2s2,
      // artifacts, subject) fails here, before a single blob moves.
      convertManifest(
        { ...m, layers: plans.map((p) => (p.to === undefined ? p.desc : { ...p.desc, mediaType: layerMediaType(p.to, p.info!.docker) })) },
        format,
      )
    }
    // Layers that move as they are do not need the config: they start while it is read (a pull
    // saves a round trip). A recompression needs the diff_ids first, and fails before any blob moves.
    let early: Array<Promise<Descriptor>> | undefined
    if (recompress.length === 0) {
      early = plans.map((p) => this.plainBlob(p.desc))
      for (const t of early)
        t.catch(() => {
          /* awaited below */
        })
    }
    if (isImage) {
      configBytes = await this.#readConfig(m.config)
      const config = parseConfig(configBytes, `config ${m.config.digest}`)
      diffIds = config.rootfs.diff_ids
      if (recompress.length > 0 && diffIds.length !== m.layers.length) {
        throw new LadingError('INVALID_CONFIG', `config ${m.config.digest}: ${diffIds.length} diff_ids for ${m.layers.length} layers; cannot recompress`)
      }
    }

    // The layers' transfer is the long pole of a copy: the config (small) waits until their bytes
    // are moving, or until they are all done (they may all be there already), so that its
    // requests do not hold up the first layer's on a busy start (a push starts 5-10 ms sooner).
    if (early) await Promise.race([this.#bytesMoving(), Promise.allSettled(early)])
    const configTask = configBytes !== undefined ? this.#putConfig(m.config, configBytes) : this.plainBlob(m.config)
    const layerTasks =
      early ??
      plans.map((p, i) => (p.to === undefined ? this.plainBlob(p.desc) : this.transcodeLayer(p.desc, p.info!.compression, p.to, p.info!.docker, diffIds?.[i])))
    const settled = await Promise.allSettled([configTask, ...layerTasks])
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    if (failed) throw failed.reason
    const layers = settled.slice(1).map((s) => (s as PromiseFulfilledResult<Descriptor>).value)

    if (format === undefined && recompress.length === 0) return this.#finish(raw, false, put)
    let out: Manifest = { ...m, layers: layers.map((l, i) => (plans[i]!.to === undefined ? m.layers[i]! : l)) }
    if (format !== undefined) out = convertManifest(out, format)
    const bytes = Buffer.from(JSON.stringify(out))
    return this.#finish({ bytes, mediaType: out.mediaType ?? raw.mediaType, digest: digestOf(bytes) }, true, put)
  }

  /** A config's verified bytes from the source, read once per copy. */
  #readConfig(desc: Descriptor): Promise<Buffer> {
    const key = `${desc.digest}/${desc.size}`
    let p = this.#configs.get(key)
    if (!p) {
      p = this.#src.readSmallBlob
        ? this.#src.readSmallBlob(desc, DEFAULT_MAX_DOCUMENT_BYTES)
        : this.#src.getBlob(desc).then((s) => readAllLimited(s, DEFAULT_MAX_DOCUMENT_BYTES, `config ${desc.digest}`))
      this.#configs.set(key, p)
    }
    return p
  }

  async #finish(raw: RawManifest, changed: boolean, put: boolean): Promise<CopiedManifest> {
    if (!changed) this.unchanged.push(raw.digest)
    if (put) await this.#putManifest(raw)
    return { raw, desc: { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length }, changed }
  }

  #putConfig(desc: Descriptor, bytes: Buffer): Promise<Descriptor> {
    return this.#blobAsIs(desc, async () => Readable.from([bytes]))
  }

  async #putManifest(raw: RawManifest, tag?: string): Promise<Descriptor> {
    const d = await this.#dest.putManifest(raw, tag)
    this.emit({ type: 'manifest', digest: raw.digest, mediaType: raw.mediaType, ...(tag !== undefined ? { tag } : {}) })
    return { mediaType: raw.mediaType, digest: d.digest, size: raw.bytes.length }
  }

  /** Put the top-level document under the destination's tag and every additional tag. */
  async putTop(raw: RawManifest): Promise<void> {
    const ref = this.#dest.ref
    const tag = 'tag' in ref ? ref.tag : undefined
    // The untagged put is the one that names the image in tagless destinations (dir:, oci:DIR).
    await this.#putManifest(raw, tag)
    const extra = this.#opts.additionalTags ?? []
    if (extra.length > 0 && ref.transport === 'dir') this.emit({ type: 'warning', message: 'dir: destinations have no tags; --additional-tag ignored' })
    else for (const t of extra) await this.#putManifest(raw, t)
  }

  /** Copy an index: the chosen children, then (when `put`) the possibly reduced or converted index. */
  async copyIndex(raw: RawManifest, chosen: readonly Descriptor[], all: boolean, source: string, put: boolean, depth = 0): Promise<CopiedManifest> {
    checkIndexDepth(depth, source)
    const index = parseIndex(raw.bytes, source, raw.mediaType)
    if (!this.#dest.capabilities.multiImage) {
      throw new LadingError('UNSUPPORTED', `${describeRef(this.#dest.ref)} holds one image, not an index: choose one platform with --platform`)
    }
    const format = this.#targetFormat(raw.mediaType)
    if (format !== undefined) this.#refuseDigestChange(`converting ${source} from ${raw.mediaType} to ${format === 'oci' ? 'OCI' : 'Docker v2s2'}`)
    if (!all) this.#refuseDigestChange(`copying ${chosen.length} of the ${index.manifests.length} images of ${source} (a reduced index)`)
    if (format !== undefined) {
      // As for manifests: fail before copying children if the index itself cannot be converted.
      convertIndex(
        {
          ...index,
          manifests: chosen.map((d) => ({ ...d, mediaType: isIndexMediaType(d.mediaType) ? indexMediaTypeFor(format) : manifestMediaTypeFor(format) })),
        },
        format,
      )
    }
    const entries: Descriptor[] = []
    let height = 0
    let changed = format !== undefined || !all
    // Children one after another (their blobs still move `concurrency` at once): a manifest is
    // put only after all its blobs, and the index only after all its children.
    for (const d of chosen) {
      this.budget.spend()
      const copied = await this.#copyChild(d, depth + 1)
      height = Math.max(height, 1 + (this.#heights.get(d.digest) ?? 0))
      changed ||= copied.changed
      entries.push(copied.changed ? { ...d, mediaType: copied.desc.mediaType, digest: copied.desc.digest, size: copied.desc.size } : d)
    }
    this.#heights.set(raw.digest, height)
    if (!changed) return this.#finish(raw, false, put)
    let out: Index = { ...index, manifests: entries }
    if (format !== undefined) out = convertIndex(out, format)
    const bytes = Buffer.from(JSON.stringify(out))
    return this.#finish({ bytes, mediaType: out.mediaType ?? raw.mediaType, digest: digestOf(bytes) }, true, put)
  }

  /** An index's entry (a manifest or a nested index, all of it), copied once per digest. */
  async #copyChild(d: Descriptor, depth: number): Promise<CopiedManifest> {
    const done = this.#children.get(d.digest)
    if (done) {
      // Copied already, reached again by another path: that path's depth is judged all the same.
      const copied = await done
      checkIndexDepth(depth + (this.#heights.get(d.digest) ?? 0), `manifest ${d.digest}`)
      return copied
    }
    const p = (async () => {
      const child = await this.#src.getManifest(d.digest)
      const childSource = `manifest ${d.digest}`
      if (isIndexMediaType(child.mediaType)) {
        return this.copyIndex(child, parseIndex(child.bytes, childSource, child.mediaType).manifests, true, childSource, true, depth)
      }
      checkIndexDepth(depth, childSource)
      this.#heights.set(d.digest, 0)
      const copied = await this.copyManifest(child, childSource, true)
      this.images.push({ digest: copied.desc.digest, mediaType: copied.desc.mediaType, ...(d.platform ? { platform: d.platform } : {}) })
      return copied
    })()
    this.#children.set(d.digest, p)
    return p
  }

  /** Referrers of `subjects`, copied as they are (they name their subject by digest). */
  async copyReferrers(subjects: Digest[]): Promise<void> {
    if (!this.#src.listReferrers) {
      this.emit({ type: 'warning', message: `${describeRef(this.#src.ref)} cannot list referrers; --referrers ignored` })
      return
    }
    if (!this.#dest.capabilities.multiImage) {
      this.emit({ type: 'warning', message: `${describeRef(this.#dest.ref)} cannot hold referrers; --referrers ignored` })
      return
    }
    const seen = new Set<string>(subjects)
    const queue = [...subjects]
    while (queue.length > 0) {
      const subject = queue.shift()!
      for (const r of await this.#src.listReferrers(subject)) {
        if (seen.has(r.digest)) continue
        seen.add(r.digest)
        await this.#copyAsIs(r.digest)
        this.referrers++
        queue.push(r.digest) // referrers of referrers (a signature of an SBOM)
      }
    }
  }

  /** A manifest or index and everything it names, byte for byte (no conversion), once per digest. */
  #copyAsIs(digest: Digest, depth = 0): Promise<void> {
    let p = this.#asIs.get(digest)
    if (!p) {
      p = this.#copyAsIsOnce(digest, depth)
      this.#asIs.set(digest, p)
    }
    return p
  }

  async #copyAsIsOnce(digest: Digest, depth: number): Promise<void> {
    this.budget.spend()
    const raw = await this.#src.getManifest(digest)
    const source = `manifest ${digest}`
    checkIndexDepth(depth, source)
    if (isIndexMediaType(raw.mediaType)) {
      for (const d of parseIndex(raw.bytes, source, raw.mediaType).manifests) await this.#copyAsIs(d.digest, depth + 1)
    } else {
      const m = parseManifest(raw.bytes, source, raw.mediaType)
      const tasks = [this.plainBlob(m.config), ...m.layers.map((l) => this.plainBlob(l))]
      const settled = await Promise.allSettled(tasks)
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
      if (failed) throw failed.reason
    }
    await this.#putManifest(raw)
  }
}

/** Entries of `index` for the requested platforms (each must match one), in request order. */
export function choosePlatforms(index: Index, platforms: Platform[], source: string): Descriptor[] {
  const out: Descriptor[] = []
  for (const want of platforms) {
    const hit = index.manifests.find((d) => platformMatches(want, d.platform))
    if (!hit) {
      const have = index.manifests.map((d) => (d.platform ? formatPlatform(d.platform) : '?')).join(', ')
      throw new LadingError('PLATFORM_NOT_FOUND', `${source}: no image for platform ${formatPlatform(want)} (the index has: ${have || 'nothing'})`)
    }
    if (!out.includes(hit)) out.push(hit)
  }
  return out
}

export async function copyImage(src: ImageSource, dest: ImageDestination, opts: CopyOptions = {}): Promise<CopyResult> {
  // A conflict between the caller's own options is theirs, said before the source is read (not
  // blamed on the source's layers when conversion later fails).
  const zstd = opts.destCompress === 'zstd' ? 'destCompress zstd' : opts.destCompressFormat === 'zstd' ? '--dest-compress-format zstd' : undefined
  if (zstd !== undefined && opts.format === 'v2s2')
    throw new LadingError('USAGE', `${zstd} and --format v2s2 conflict: Docker v2 schema 2 has no zstd layer type`)
  const run = new CopyRun(src, dest, opts)
  const top = await src.getManifest()
  const source = describeRef(src.ref)
  let result: CopiedManifest
  if (isIndexMediaType(top.mediaType)) {
    const index = parseIndex(top.bytes, source, top.mediaType)
    const all = opts.all === true
    const chosen = all ? index.manifests : choosePlatforms(index, opts.platforms?.length ? opts.platforms : [hostPlatform()], source)
    if (!all && chosen.length === 1 && !isIndexMediaType(chosen[0]!.mediaType)) {
      // One platform: the image itself, as skopeo copies by default (no index at the destination).
      checkIndexDepth(1, `manifest ${chosen[0]!.digest}`)
      const child = await src.getManifest(chosen[0]!.digest)
      result = await run.copyManifest(child, `manifest ${chosen[0]!.digest}`, false)
      run.images.push({ digest: result.desc.digest, mediaType: result.desc.mediaType, ...(chosen[0]!.platform ? { platform: chosen[0]!.platform } : {}) })
    } else {
      result = await run.copyIndex(top, chosen, all, source, false)
    }
  } else if (isManifestMediaType(top.mediaType)) {
    result = await run.copyManifest(top, source, false)
    run.images.push({ digest: result.desc.digest, mediaType: result.desc.mediaType })
  } else {
    throw new LadingError('UNSUPPORTED', `${source}: cannot copy a document of media type ${top.mediaType}`)
  }
  if (opts.referrers) {
    // Referrers name their subject by digest: only subjects that kept their digest can keep them.
    if (result.changed)
      run.emit({ type: 'warning', message: `the copied image's digest changed (${top.digest} -> ${result.desc.digest}); its referrers cannot follow it` })
    await run.copyReferrers([...new Set(run.unchanged)])
  }
  await run.putTop(result.raw)
  await dest.commit()
  if (opts.digestFile !== undefined) await atomicWriteFile(opts.digestFile, result.desc.digest)
  return {
    digest: result.desc.digest,
    mediaType: result.desc.mediaType,
    size: result.desc.size,
    images: run.images,
    blobs: run.stats,
    referrers: run.referrers,
  }
}
