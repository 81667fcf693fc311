/**
 * An ImageSource over anything that reads like an OCI image layout (image-layout.md): a layout
 * directory (src/store Layout) or a layout inside a tar (oci-archive). The reference picks the
 * top-level manifest: by digest, by tag (the `org.opencontainers.image.ref.name` annotation of an
 * index.json entry, image-layout.md §index.json), or, with neither, the only entry of index.json
 * (as skopeo does; several entries are an error listing the tags).
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../../digest/digest.js'
import { LadingError } from '../../errors.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../../io/limits.js'
import { manifestMediaType } from '../../spec/parse.js'
import { referrerOf } from '../../spec/referrer.js'
import { Annotation, isIndexMediaType, isManifestMediaType } from '../../spec/media-types.js'
import type { Descriptor, Index, RawManifest } from '../../spec/types.js'
import type { ImageReference, ImageSource } from '../types.js'

/** The reading half of a layout; Layout (src/store/layout.ts) has exactly these. */
export interface LayoutReader {
  readIndex(): Promise<Index>
  getBlob(desc: { digest: Digest; size?: number }): Promise<Readable>
  readBlob(desc: { digest: Digest; size?: number }, maxBytes?: number): Promise<Buffer>
}

/** The index.json entry a tag names, or the only entry when no tag is given. */
export function pickEntry(index: Index, tag: string | undefined, label: string): Descriptor {
  if (tag !== undefined) {
    const found = index.manifests.filter((d) => d.annotations?.[Annotation.RefName] === tag)
    if (found.length === 0) throw new LadingError('NOT_FOUND', `${label}: no image tagged ${JSON.stringify(tag)}`)
    return found.at(-1)!
  }
  if (index.manifests.length === 1) return index.manifests[0]!
  if (index.manifests.length === 0) throw new LadingError('NOT_FOUND', `${label}: the layout holds no images`)
  const tags = index.manifests.map((d) => d.annotations?.[Annotation.RefName]).filter((t) => t !== undefined)
  throw new LadingError('USAGE', `${label}: the layout holds ${index.manifests.length} images; name one with :TAG (tags: ${tags.join(', ') || 'none'})`)
}

export class LayoutSource implements ImageSource {
  readonly ref: ImageReference
  readonly #reader: LayoutReader
  readonly #label: string
  readonly #tag: string | undefined
  readonly #digest: Digest | undefined
  readonly #onClose: () => Promise<void>
  /** Media types of descriptors seen (index.json entries, index children) by digest. */
  readonly #known = new Map<string, Descriptor>()

  constructor(
    ref: ImageReference,
    reader: LayoutReader,
    label: string,
    sel: { tag?: string | undefined; digest?: Digest | undefined },
    onClose: () => Promise<void> = async () => {},
  ) {
    this.ref = ref
    this.#reader = reader
    this.#label = label
    this.#tag = sel.tag
    this.#digest = sel.digest
    this.#onClose = onClose
  }

  async #read(desc: { digest: Digest; size?: number | undefined; mediaType?: string | undefined }): Promise<RawManifest> {
    const bytes = await this.#reader.readBlob(
      desc.size !== undefined ? { digest: desc.digest, size: desc.size } : { digest: desc.digest },
      DEFAULT_MAX_DOCUMENT_BYTES,
    )
    const mediaType = desc.mediaType ?? manifestMediaType(bytes, `${this.#label}: ${desc.digest}`)
    return { bytes, mediaType, digest: desc.digest }
  }

  async getManifest(digest?: Digest): Promise<RawManifest> {
    if (digest === undefined && this.#digest === undefined) {
      const index = await this.#reader.readIndex()
      for (const d of index.manifests) this.#known.set(d.digest, d)
      const entry = pickEntry(index, this.#tag, this.#label)
      return this.#remember(await this.#read(entry))
    }
    const want = digest ?? this.#digest!
    const known = this.#known.get(want)
    return this.#remember(await this.#read(known ?? { digest: want }))
  }

  #remember(raw: RawManifest): RawManifest {
    // Children of an index are fetched by digest next; remember their sizes and media types.
    if (isIndexMediaType(raw.mediaType)) {
      try {
        const doc = JSON.parse(raw.bytes.toString('utf8')) as { manifests?: Descriptor[] }
        for (const d of doc.manifests ?? [])
          if (typeof d?.digest === 'string' && (isManifestMediaType(d.mediaType) || isIndexMediaType(d.mediaType))) this.#known.set(d.digest, d)
      } catch {
        /* the copy engine parses strictly and reports; this is only a hint */
      }
    }
    return raw
  }

  async getBlob(desc: Descriptor): Promise<Readable> {
    return this.#reader.getBlob({ digest: desc.digest, size: desc.size })
  }

  async readSmallBlob(desc: Descriptor, maxBytes: number): Promise<Buffer> {
    return this.#reader.readBlob({ digest: desc.digest, size: desc.size }, maxBytes)
  }

  /** Referrers of `digest` among the manifests index.json lists (image-spec manifest.md §subject). */
  async listReferrers(digest: Digest): Promise<Descriptor[]> {
    const index = await this.#reader.readIndex()
    const out: Descriptor[] = []
    for (const d of index.manifests) {
      if (!isManifestMediaType(d.mediaType) && !isIndexMediaType(d.mediaType)) continue
      let bytes: Buffer
      try {
        bytes = await this.#reader.readBlob({ digest: d.digest, size: d.size }, DEFAULT_MAX_DOCUMENT_BYTES)
      } catch {
        continue
      }
      const r = referrerOf(bytes, d)
      if (r?.subject === digest) out.push(r.descriptor)
    }
    return out
  }

  /** `await using`: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async close(): Promise<void> {
    await this.#onClose()
  }
}
