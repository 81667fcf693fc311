/**
 * Committing an edited image to a layout (used by `lading config`, `new`, `repack`, `insert`).
 * Values in, new blobs out: the config is serialised and stored, the manifest's config
 * descriptor is pointed at it, the manifest is stored, and `tag` (if any) is moved to it.
 * Layers must already be in the layout (put by the caller); they are checked, so a tag never
 * names an image with missing blobs.
 */
import { LadingError } from '../errors.js'
import { Annotation, MediaType } from '../spec/media-types.js'
import type { Descriptor, ImageConfig, Manifest } from '../spec/types.js'
import type { Layout } from './layout.js'
import { withWriterLease } from './writer-lease.js'

export interface ImageToWrite {
  config: ImageConfig
  manifest: Manifest
  /** Tag to point at the new manifest (replacing what it named). */
  tag?: string | undefined
  /** Extra annotations for the index.json entry of the tag (not the manifest's own annotations). */
  annotations?: Record<string, string> | undefined
}

/** Writes the config blob and the manifest blob (config descriptor updated), and points `tag` at the manifest. */
export async function writeImage(layout: Layout, image: ImageToWrite): Promise<Descriptor> {
  // The config and manifest are stored before the tag names them: held under a writer lease so
  // that gc keeps them (src/store/writer-lease.ts); setTag checks the whole image under the lock.
  return withWriterLease(layout, () => writeImageLeased(layout, image))
}

async function writeImageLeased(layout: Layout, image: ImageToWrite): Promise<Descriptor> {
  for (const layer of image.manifest.layers) {
    // Layers may legitimately be absent when they are foreign/non-distributable with urls.
    if (layer.urls?.length) continue
    const size = await layout.blobSize(layer.digest)
    // Reused by the new image: young again, so gc keeps it while the lease lives.
    if (size !== undefined) await layout.touchBlob(layer.digest)
    if (size === undefined) throw new LadingError('BLOB_UNKNOWN', `writeImage: layer ${layer.digest} is not in layout ${layout.dir}`)
    if (size !== layer.size) throw new LadingError('SIZE_MISMATCH', `writeImage: layer ${layer.digest}: descriptor says ${layer.size} bytes, blob has ${size}`)
  }
  const configBytes = Buffer.from(JSON.stringify(image.config))
  const stored = await layout.putBlob(configBytes)
  const { mediaType: givenMediaType, schemaVersion: _v, ...rest } = image.manifest
  // Keep the mediaType field explicit and first (image-spec manifest.md: it SHOULD be used).
  const mediaType = givenMediaType ?? MediaType.OciManifest
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType,
    ...rest,
    config: { ...rest.config, mediaType: rest.config.mediaType || MediaType.OciConfig, digest: stored.digest, size: stored.size },
  }
  const desc = await layout.putManifest(Buffer.from(JSON.stringify(manifest)), mediaType)
  if (image.tag !== undefined) {
    const entry: Descriptor = image.annotations ? { ...desc, annotations: withoutRefName(image.annotations) } : desc
    await layout.setTag(image.tag, entry)
  }
  return desc
}

function withoutRefName(a: Record<string, string>): Record<string, string> {
  const { [Annotation.RefName]: _drop, ...rest } = a
  return rest
}
