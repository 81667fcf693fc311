/**
 * A new image with nothing in it, as `lading new` makes it.
 *
 * umoci writes `layers: []` here. image-spec manifest.md §Image Manifest Property Descriptions
 * says "For portability, `layers` SHOULD have at least one entry", and the spec's JSON schema
 * (image-manifest-schema.json, `minItems: 1`) refuses an empty array, so tools that check the
 * schema (oci-image-tool) reject umoci's empty images. Where umoci and the spec disagree we follow
 * the spec: the new image has ONE layer holding an empty tar archive (just the two zero blocks that
 * end a tar, layer.md), gzip-compressed. Unpacking it gives an empty root filesystem, exactly as
 * with no layer, and its diff_id and history entry keep config and manifest consistent.
 */
import { Readable } from 'node:stream'
import { digestOf } from '../digest/digest.js'
import { compress } from '../io/compression.js'
import { newImageConfig } from '../spec/config-edit.js'
import { MediaType } from '../spec/media-types.js'
import type { Descriptor, ImageConfig, Manifest, Platform } from '../spec/types.js'
import { writeImage } from './image.js'
import { withWriterLease } from './writer-lease.js'
import type { Layout } from './layout.js'

/** The end-of-archive marker: an empty tar (POSIX.1-2001 ustar: two 512-byte zero blocks). */
export const EMPTY_TAR = Buffer.alloc(1024)

export interface NewImageOptions {
  /** RFC 3339 creation time for the config and the history entry (default now). */
  created?: string
  /** created_by of the history entry (default "lading new"). */
  createdBy?: string
}

export async function newImage(
  layout: Layout,
  tag: string,
  platform: Pick<Platform, 'os' | 'architecture' | 'variant'>,
  opts: NewImageOptions = {},
): Promise<Descriptor> {
  // The empty layer is stored before the tag names it: under a writer lease (writer-lease.ts).
  return withWriterLease(layout, () => newImageLeased(layout, tag, platform, opts))
}

async function newImageLeased(
  layout: Layout,
  tag: string,
  platform: Pick<Platform, 'os' | 'architecture' | 'variant'>,
  opts: NewImageOptions,
): Promise<Descriptor> {
  const created = opts.created ?? new Date().toISOString()
  const layer = await layout.putBlob(compress(Readable.from([EMPTY_TAR]), 'gzip'))
  const base = newImageConfig(platform, created)
  const config: ImageConfig = { ...base, rootfs: { ...base.rootfs, diff_ids: [...base.rootfs.diff_ids, digestOf(EMPTY_TAR)] } }
  config.history = [{ created, created_by: opts.createdBy ?? 'lading new', comment: 'empty base layer' }]
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    // writeImage replaces this with the descriptor of the config it stores.
    config: { mediaType: MediaType.OciConfig, digest: digestOf('{}'), size: 2 },
    layers: [{ mediaType: MediaType.OciLayerGzip, digest: layer.digest, size: layer.size }],
  }
  return writeImage(layout, { config, manifest, tag })
}
