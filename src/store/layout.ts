/**
 * A store of images: a blob store and an index store (src/store/blob-store.ts,
 * src/store/index-store.ts) composed, with the tag rules on top. Backend-neutral: `Layout.open`
 * and `Layout.init` are the conveniences for an OCI image layout on disk (src/store/fs/), and
 * `memoryLayout()` (src/store/memory/) gives one in memory.
 *
 * Contracts are the stores' (every read verifies; a blob is visible only once verified; put
 * is idempotent; index.json changes only through `update`), plus: a tag never names an image
 * with missing blobs (setTag checks under the index lock, src/store/closure.ts).
 *
 * The methods below that only delegate to a store are kept for the callers that use them;
 * new code may use `layout.blobs` and `layout.index` directly. This module is imported by
 * `lading ls`; keep its imports light (gc is loaded on demand).
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../digest/digest.js'
import { LadingError, quoteName } from '../errors.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../io/limits.js'
import { Annotation, isIndexMediaType, isManifestMediaType } from '../spec/media-types.js'
import { manifestMediaType, parseIndex, parseManifest } from '../spec/parse.js'
import { assertValidTag } from '../spec/ref-name.js'
import type { Descriptor, Index, RawManifest } from '../spec/types.js'
import type { BlobExpectation, BlobInfo, BlobRef, BlobStore } from './blob-store.js'
import { assertComplete } from './closure.js'
import { FsBlobStore, type TempFile } from './fs/blob-store.js'
import { initLayoutDir, openLayoutDir } from './fs/open-layout.js'
import type { GcOptions, GcResult } from './gc.js'
import type { IndexStore, Stores, WriterLeases } from './index-store.js'

export { IMAGE_LAYOUT_VERSION, INDEX_FILE, LAYOUT_FILE, BLOBS_DIR, INDEX_LOCK_FILE } from './fs/layout-files.js'
export type { BlobExpectation } from './blob-store.js'
export type { GcOptions, GcResult } from './gc.js'

export class Layout implements Stores {
  /** The layout directory for a file-system layout; for other backends, the name they were given. */
  readonly dir: string
  readonly blobs: BlobStore
  readonly index: IndexStore
  readonly leases: WriterLeases

  constructor(stores: { name: string; blobs: BlobStore; index: IndexStore; leases: WriterLeases }) {
    this.dir = stores.name
    this.blobs = stores.blobs
    this.index = stores.index
    this.leases = stores.leases
  }

  /** The name used in messages (Stores). */
  get name(): string {
    return this.dir
  }

  /**
   * Create an OCI layout directory (dir, oci-layout, index.json, blobs/sha256). On an existing
   * layout it only checks it (idempotent). A non-empty directory that is not a layout is refused (EXISTS).
   */
  static async init(dir: string): Promise<Layout> {
    return new Layout(await initLayoutDir(dir))
  }

  /** Open an OCI layout directory; INVALID_LAYOUT if oci-layout is missing, unreadable or of an unknown version. */
  static async open(dir: string): Promise<Layout> {
    return new Layout(await openLayoutDir(dir))
  }

  /** image-layout.md §Blobs: blobs/<alg>/<encoded>. File-system layouts only (UNSUPPORTED otherwise). */
  blobPath(d: Digest): string {
    return this.#fsBlobs('blobPath').path(d)
  }

  async hasBlob(d: Digest): Promise<boolean> {
    return (await this.blobs.stat(d)) !== undefined
  }

  async blobSize(d: Digest): Promise<number | undefined> {
    return (await this.blobs.stat(d))?.size
  }

  /** BlobStore.put: visible only once verified; idempotent (an existing blob is kept, `body` not read). */
  async putBlob(body: Readable | Uint8Array, expected: BlobExpectation = {}): Promise<BlobInfo> {
    return this.blobs.put(body, expected)
  }

  /** A stream of the blob that errors before it ends unless size and digest match. BLOB_UNKNOWN if absent. */
  async getBlob(desc: BlobRef): Promise<Readable> {
    return this.blobs.get(desc)
  }

  /** The verified bytes of a (small) blob: manifests, configs, indexes. SIZE_LIMIT above `maxBytes`. */
  async readBlob(desc: BlobRef, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES): Promise<Buffer> {
    return this.blobs.read(desc, maxBytes)
  }

  /** Remove a blob; absent is not an error. */
  async deleteBlob(d: Digest): Promise<void> {
    await this.blobs.delete(d)
  }

  listBlobs(): AsyncIterable<BlobInfo> {
    return this.blobs.list()
  }

  /** Temp files in blobs/<alg>/ and the layout root. File-system layouts only (UNSUPPORTED otherwise). */
  async listTempFiles(): Promise<TempFile[]> {
    return this.#fsBlobs('listTempFiles').listTempFiles()
  }

  /** Refresh a reused blob's modification time so gc counts it as young (src/store/writer-lease.ts). */
  async touchBlob(d: Digest): Promise<void> {
    await this.blobs.touch(d)
  }

  /** The index (index.json for a layout), parsed strictly. */
  async readIndex(): Promise<Index> {
    return this.index.read()
  }

  /** Read-modify-write the index under the store's lock; the rewrite is atomic. Returns what was written. */
  async updateIndex(fn: (index: Index) => Index | Promise<Index>, opts: { timeoutMs?: number } = {}): Promise<Index> {
    return this.index.update(fn, opts)
  }

  /** Run `fn` holding the index lock without rewriting it (gc holds it while it sweeps). */
  async withIndexLock<T>(fn: () => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
    return this.index.withLock(fn, opts)
  }

  /** Tags in index order: descriptors carrying org.opencontainers.image.ref.name. */
  async listTags(): Promise<Array<{ tag: string; descriptor: Descriptor }>> {
    const index = await this.index.read()
    const out: Array<{ tag: string; descriptor: Descriptor }> = []
    for (const d of index.manifests) {
      const tag = d.annotations?.[Annotation.RefName]
      if (tag !== undefined) out.push({ tag, descriptor: d })
    }
    return out
  }

  /** All index entries carrying this tag (several when a tool tags one entry per platform). */
  async tagEntries(tag: string): Promise<Descriptor[]> {
    const index = await this.index.read()
    return index.manifests.filter((d) => d.annotations?.[Annotation.RefName] === tag)
  }

  /** The descriptor a tag names; NOT_FOUND naming the tag and layout (and the tags there are). */
  async resolveTag(tag: string): Promise<Descriptor> {
    const tags = await this.listTags()
    const hit = tags.find((t) => t.tag === tag)
    if (!hit)
      throw this.tagNotFound(
        tag,
        tags.map((t) => t.tag),
      )
    return hit.descriptor
  }

  /** The error for a missing tag, listing the tags the layout has. */
  tagNotFound(tag: string, have: string[]): LadingError {
    const list = have.length === 0 ? 'it has no tags' : `tags: ${[...new Set(have)].slice(0, 20).join(', ')}${have.length > 20 ? ', …' : ''}`
    return new LadingError('NOT_FOUND', `tag ${quoteName(tag)} not found in layout ${this.dir} (${list})`)
  }

  /**
   * Point `tag` at `desc`: replaces every entry carrying that ref.name with one new entry. The
   * descriptor's blob must exist (no dangling tags); other annotations of `desc` are kept.
   */
  async setTag(tag: string, desc: Descriptor): Promise<void> {
    assertValidTag(tag)
    const entry: Descriptor = { ...desc, annotations: { ...desc.annotations, [Annotation.RefName]: tag } }
    await this.index.update(async (index) => {
      // Checked under the lock: gc holds it while sweeping, so no blob the image reaches can
      // vanish between this check and the write (src/store/writer-lease.ts states the rule).
      await assertComplete(this, desc, `cannot tag ${quoteName(tag)}`)
      return { ...index, manifests: [...index.manifests.filter((d) => d.annotations?.[Annotation.RefName] !== tag), entry] }
    })
  }

  /** Remove the entries carrying `tag`; NOT_FOUND if there are none. Blobs stay until gc. */
  async removeTag(tag: string): Promise<void> {
    await this.index.update((index) => {
      const manifests = index.manifests.filter((d) => d.annotations?.[Annotation.RefName] !== tag)
      if (manifests.length === index.manifests.length) {
        throw this.tagNotFound(
          tag,
          index.manifests.flatMap((d) => d.annotations?.[Annotation.RefName] ?? []),
        )
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
    const { digest, size } = await this.blobs.put(bytes)
    return { mediaType, digest, size }
  }

  /** A stored manifest/index: verified bytes, and its media type (the descriptor's, else the document's). */
  async getManifest(desc: { digest: Digest; size?: number | undefined; mediaType?: string | undefined }): Promise<RawManifest> {
    const bytes = await this.blobs.read(desc)
    const mediaType = desc.mediaType ?? manifestMediaType(bytes, `blob ${desc.digest}`)
    return { bytes, mediaType, digest: desc.digest }
  }

  /** Convenience for listReferrers(layout.blobs, ...) (src/store/referrers.ts). */
  async listReferrers(subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const { listReferrers } = await import('./referrers.js')
    return listReferrers(this.blobs, subject, artifactType)
  }

  /** Convenience for collectGarbage(layout, opts) (src/store/gc.ts). */
  async gc(opts: GcOptions = {}): Promise<GcResult> {
    const { collectGarbage } = await import('./gc.js')
    return collectGarbage(this, opts)
  }

  #fsBlobs(what: string): FsBlobStore {
    if (this.blobs instanceof FsBlobStore) return this.blobs
    throw new LadingError('UNSUPPORTED', `${what}: ${this.dir} is not a file-system layout`)
  }
}
