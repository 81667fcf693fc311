/**
 * An ImageDestination over an OCI image layout (src/store Layout), shared by `oci:` and
 * `oci-archive:` (which builds a layout in a temp directory and tars it on commit).
 *
 * Ordering contract (what makes an interrupted copy leave a valid layout that a rerun completes):
 * blobs become visible only once verified (Layout.putBlob: temp, fsync, rename); manifests are
 * blobs too; index.json changes only in commit(), under the layout's lock, atomically. Until
 * then nothing references the new blobs, so an interrupted copy leaves only unreferenced blobs
 * (which gc removes, and a rerun reuses via hasBlob).
 *
 * gc (src/store/writer-lease.ts states the rule): the destination holds a writer lease from its
 * first blob until close(), touches blobs it finds already there, and commit() checks under the
 * index lock that every image it names is complete before writing index.json.
 *
 * The top-level image is the last manifest put before commit (the copy engine puts children
 * first). It is named by each tag put with it; with no tag at all it becomes an untagged
 * index.json entry, as skopeo does. Manifests carrying a `subject` (referrers) are also listed
 * in index.json, untagged, so they stay reachable (image-spec manifest.md §subject).
 */
import type { Readable } from 'node:stream'
import { LadingError } from '../../errors.js'
import { assertComplete } from '../../store/closure.js'
import { Layout } from '../../store/layout.js'
import { acquireWriterLease, type WriterLease } from '../../store/writer-lease.js'
import { Annotation, MediaType } from '../../spec/media-types.js'
import { assertValidTag } from '../../spec/ref-name.js'
import { referrerOf } from '../../spec/referrer.js'
import type { Descriptor, RawManifest } from '../../spec/types.js'
import { OCI_CAPABILITIES } from '../capabilities.js'
import type { ImageDestination, ImageReference } from '../types.js'

function hasSubject(raw: RawManifest): boolean {
  return referrerOf(raw.bytes, { digest: raw.digest, size: raw.bytes.length, mediaType: raw.mediaType }) !== undefined
}

export class LayoutDestination implements ImageDestination {
  readonly ref: ImageReference
  readonly capabilities = OCI_CAPABILITIES
  readonly #layout: Promise<Layout>
  readonly #tags = new Map<string, Descriptor>()
  readonly #referrers: Descriptor[] = []
  #last: Descriptor | undefined
  #lease: Promise<WriterLease> | undefined
  #committed = false
  #abandon: ((layout: Layout) => Promise<void>) | undefined

  /**
   * `layout` may still be opening (oci: starts initialising the directory at open and lets the
   * copy read its source meanwhile); a failure to open it is reported by the first call that
   * needs it. `abandon` runs once, at close, if nothing was committed (oci: removes a
   * directory it created).
   */
  constructor(ref: ImageReference, layout: Layout | Promise<Layout>, abandon?: (layout: Layout) => Promise<void>) {
    this.ref = ref
    this.#abandon = abandon
    this.#layout = Promise.resolve(layout)
    this.#layout.catch(() => {
      /* reported by the first method that awaits it */
    })
  }

  /** The layout, once it is open. */
  layout(): Promise<Layout> {
    return this.#layout
  }

  /** The layout, with this destination's writer lease taken (once) before anything is stored. */
  async #leased(): Promise<Layout> {
    const layout = await this.#layout
    this.#lease ??= acquireWriterLease(layout)
    await this.#lease
    return layout
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    const layout = await this.#leased()
    const size = await layout.blobSize(desc.digest)
    const there = size !== undefined && size === desc.size
    // Reused, not written: made young so that gc keeps it while our lease lives.
    if (there) await layout.touchBlob(desc.digest)
    return there
  }

  async putBlob(body: Readable, expected?: Partial<Descriptor>): Promise<Descriptor> {
    let layout: Layout
    try {
      layout = await this.#leased()
    } catch (e) {
      body.destroy()
      throw e
    }
    const { digest, size } = await layout.putBlob(body, {
      ...(expected?.digest !== undefined ? { digest: expected.digest } : {}),
      ...(expected?.size !== undefined ? { size: expected.size } : {}),
      ...(expected?.digest !== undefined ? { name: expected.digest } : {}),
    })
    return { mediaType: expected?.mediaType ?? 'application/octet-stream', digest, size }
  }

  async putManifest(raw: RawManifest, tag?: string): Promise<Descriptor> {
    if (
      raw.mediaType !== MediaType.OciManifest &&
      raw.mediaType !== MediaType.OciIndex &&
      raw.mediaType !== MediaType.DockerManifest &&
      raw.mediaType !== MediaType.DockerManifestList
    ) {
      throw new LadingError('UNSUPPORTED', `cannot store a manifest of media type ${raw.mediaType} in an OCI layout`)
    }
    if (tag !== undefined) assertValidTag(tag)
    const desc = await (await this.#leased()).putManifest(raw.bytes, raw.mediaType)
    if (desc.digest !== raw.digest) throw new LadingError('DIGEST_MISMATCH', `manifest stored as ${desc.digest} but described as ${raw.digest}`)
    if (tag !== undefined) this.#tags.set(tag, desc)
    if (hasSubject(raw)) this.#referrers.push(desc)
    this.#last = desc
    return desc
  }

  /** Writes index.json once: referrers, then the tags (or the untagged top-level image). */
  async commit(): Promise<void> {
    const top = this.#last
    if (top === undefined) throw new LadingError('USAGE', `${(await this.#layout).dir}: nothing to commit: no manifest was put`)
    const tagged = [...this.#tags.entries()]
    const layout = await this.#layout
    await layout.updateIndex(async (index) => {
      // Under the lock gc takes: nothing can vanish between this check and the write.
      const named = new Map<string, Descriptor>([top, ...this.#referrers, ...this.#tags.values()].map((d) => [d.digest, d]))
      for (const d of named.values()) await assertComplete(layout, d, `${layout.dir}: cannot write index.json`)
      let manifests = index.manifests
      const untagged: Descriptor[] = [...this.#referrers]
      if (tagged.length === 0 && !this.#referrers.some((r) => r.digest === top.digest)) untagged.push(top)
      for (const d of untagged) {
        if (!manifests.some((m) => m.digest === d.digest && m.annotations?.[Annotation.RefName] === undefined)) manifests = [...manifests, d]
      }
      for (const [tag, d] of tagged) {
        manifests = [...manifests.filter((m) => m.annotations?.[Annotation.RefName] !== tag), { ...d, annotations: { [Annotation.RefName]: tag } }]
      }
      return { ...index, manifests }
    })
    this.#committed = true
  }

  /** `await using`: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async close(): Promise<void> {
    const layout = await this.#layout.catch(() => undefined)
    const lease = await this.#lease?.catch(() => undefined)
    await lease?.release()
    const abandon = this.#abandon
    this.#abandon = undefined
    if (layout && abandon && !this.#committed) await abandon(layout)
  }
}
