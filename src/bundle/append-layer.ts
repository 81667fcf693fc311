/**
 * Appending one layer to an image: the shared tail of `lading repack` and `lading insert`.
 * The layer tar is streamed once: hashed for its diff_id (image-spec config.md §rootfs: the
 * digest of the *uncompressed* tar), compressed, and written to the layout with putBlob (which
 * digests the compressed bytes and makes the blob visible only once complete). Then the config
 * (diff_ids, history) and the manifest (layers) are rewritten and the tag moved by writeImage,
 * so a failure before that point leaves the image as it was (at worst an unreferenced blob for gc).
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { VerifyingStream, type Digest } from '../digest/index.js'
import { LadingError, quoteName } from '../errors.js'
import { compress } from '../io/compression.js'
import { isIndexMediaType, layerMediaType, MediaType, type Compression } from '../spec/media-types.js'
import type { Descriptor, History, ImageConfig, Manifest } from '../spec/types.js'
import type { Layout } from '../store/layout.js'
import { writeImage } from '../store/image.js'
import { withWriterLease } from '../store/writer-lease.js'

const BLOCK = 512

export interface AppendLayerOptions {
  compression: Compression
  level?: number
  /** The history entry for the new layer (empty_layer is dropped); undefined = none (`--no-history`). */
  history?: History
  /** Tag to point at the new manifest. */
  tag?: string
}

export interface AppendLayerResult {
  /** The new manifest, or undefined when the tar held no entries (nothing to add). */
  manifest?: Descriptor
  layer?: Descriptor
  diffId?: Digest
  /** The history entry was skipped while the image already had history (it no longer lines up). */
  historyMismatch?: boolean
}

/**
 * Reads the first tar block; if the archive has no entries (it starts with a zero block or is
 * empty) returns undefined, else a stream that replays it and the rest.
 */
export async function nonEmptyTar(tar: Readable): Promise<Readable | undefined> {
  const it = tar[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const chunks: Buffer[] = []
  let n = 0
  while (n < BLOCK) {
    const r = await it.next()
    if (r.done) break
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value)
    chunks.push(b)
    n += b.length
  }
  const head = Buffer.concat(chunks, n)
  const first = head.subarray(0, BLOCK)
  if (first.length < BLOCK || first.every((x) => x === 0)) {
    await it.return?.()
    tar.destroy()
    return undefined
  }
  return Readable.from(
    (async function* () {
      try {
        yield head
        while (true) {
          const r = await it.next()
          if (r.done) return
          yield r.value
        }
      } finally {
        await it.return?.()
      }
    })(),
    { objectMode: false },
  )
}

/**
 * Moving a tag that names an index (or several per-platform entries) to one new manifest would
 * silently drop the other platforms from the tag: refuse, and let the caller pick another tag.
 */
export async function assertTagMovable(layout: Layout, tag: string): Promise<void> {
  const entries = await layout.tagEntries(tag)
  if (entries.length > 1 || entries.some((d) => isIndexMediaType(d.mediaType))) {
    throw new LadingError(
      'UNSUPPORTED',
      `tag ${quoteName(tag)} in ${layout.dir} names ${entries.length > 1 ? `${entries.length} entries` : 'an index'} (several images); moving it to one new image would drop the others: give another tag`,
    )
  }
}

/** Is this manifest in the Docker v2s2 family (its layers must then use Docker media types)? */
function isDocker(m: Manifest): boolean {
  return m.mediaType === MediaType.DockerManifest
}

/**
 * Stream `tar` into the layout as a new top layer of (manifest, config) and commit the image.
 * A tar with no entries adds nothing and returns `{}`. The stream's chunks become the layer's:
 * nothing else may read them (blocks of io/block-pool are reused once compressed).
 */
export async function appendLayer(
  layout: Layout,
  base: { manifest: Manifest; config: ImageConfig },
  tar: Readable,
  opts: AppendLayerOptions,
): Promise<AppendLayerResult> {
  // The new layer is stored before the tag names it: under a writer lease, so that a concurrent
  // gc keeps it (src/store/writer-lease.ts); writeImage checks the whole image before tagging.
  return withWriterLease(layout, () => appendLayerLeased(layout, base, tar, opts))
}

async function appendLayerLeased(
  layout: Layout,
  base: { manifest: Manifest; config: ImageConfig },
  tar: Readable,
  opts: AppendLayerOptions,
): Promise<AppendLayerResult> {
  if (opts.tag !== undefined) await assertTagMovable(layout, opts.tag)
  const body = await nonEmptyTar(tar)
  if (!body) return {}

  const hasher = new VerifyingStream({ name: 'new layer (uncompressed)' })
  const hashing = pipeline(body, hasher)
  const compressed =
    opts.compression === 'none'
      ? hasher
      : // The tar stream is ours alone, so its blocks may be reused once compressed, and the
        // compressed stream's only reader is putBlob, which hands its blocks back once written
        // (io/block-pool.ts).
        compress(hasher, opts.compression, { ...(opts.level === undefined ? {} : { level: opts.level }), recycleInput: true, recycleOutput: true })
  let put: { digest: Digest; size: number }
  try {
    ;[, put] = await Promise.all([hashing, layout.putBlob(compressed, { name: 'new layer' })])
  } catch (e) {
    body.destroy()
    hasher.destroy()
    throw e
  }
  const diffId = hasher.result?.digest
  if (!diffId) throw new LadingError('INVALID_TAR', 'new layer: the uncompressed stream ended without a digest')

  const layer: Descriptor = { mediaType: layerMediaType(opts.compression, isDocker(base.manifest)), digest: put.digest, size: put.size }
  const config: ImageConfig = structuredClone(base.config)
  config.rootfs = { type: 'layers', diff_ids: [...(base.config.rootfs?.diff_ids ?? []), diffId] }

  // config.md §Properties: created is the image's creation time: the new layer's.
  const created = opts.history?.created ?? new Date().toISOString()
  config.created = created
  let historyMismatch = false
  if (opts.history) {
    const h: History = { ...opts.history, created }
    delete h.empty_layer
    config.history = [...(base.config.history ?? []), h]
  } else if (Array.isArray(base.config.history) && base.config.history.length > 0) {
    // config.md §Properties: history: entries that are not empty_layer line up with the layers;
    // without an entry for the new layer they no longer do. umoci does the same; we tell the caller.
    historyMismatch = true
  }

  const manifest: Manifest = structuredClone(base.manifest)
  manifest.layers = [...base.manifest.layers, layer]
  const image: Parameters<typeof writeImage>[1] = { config, manifest }
  if (opts.tag !== undefined) image.tag = opts.tag
  const desc = await writeImage(layout, image)
  return { manifest: desc, layer, diffId, historyMismatch }
}
