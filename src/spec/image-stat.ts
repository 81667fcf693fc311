/**
 * The facts `lading stat` shows about one image: its history joined with its layers (the
 * way `umoci stat` pairs them: each non-empty_layer history entry takes the next layer), and
 * the image's identities (image-spec config.md §ImageID, descriptor.md §Digests):
 *   - manifest digest: what a registry calls the image (`repo@sha256:...`)
 *   - image id: the digest of the config blob
 *   - diff_ids: digests of the *uncompressed* layer tars (config rootfs.diff_ids)
 *   - layer digests: digests of the blobs as stored (compressed)
 */
import type { Descriptor, ImageConfig, Manifest } from './types.js'

export interface StatHistoryEntry {
  layer: Descriptor | null
  diff_id: string
  created?: string
  created_by?: string
  author?: string
  empty_layer?: boolean
  comment?: string
}

export interface ImageStat {
  history: StatHistoryEntry[]
  manifest: { mediaType: string; digest: string; size: number }
  imageId: string
  diffIds: string[]
  platform: string
  created?: string
  author?: string
}

export function statImage(manifestDesc: Descriptor, manifest: Manifest, config: ImageConfig): ImageStat {
  const layers = manifest.layers
  const diffIds = config.rootfs?.diff_ids ?? []
  const history: StatHistoryEntry[] = []
  let li = 0
  for (const h of config.history ?? []) {
    const entry: StatHistoryEntry = { layer: null, diff_id: '' }
    if (!h.empty_layer) {
      entry.layer = layers[li] ? descriptorOnly(layers[li]!) : null
      entry.diff_id = diffIds[li] ?? ''
      li++
    }
    if (h.created !== undefined) entry.created = h.created
    if (h.created_by !== undefined) entry.created_by = h.created_by
    if (h.author !== undefined) entry.author = h.author
    if (h.empty_layer !== undefined) entry.empty_layer = h.empty_layer
    if (h.comment !== undefined) entry.comment = h.comment
    history.push(entry)
  }
  // Layers with no history entry (images built without history) still show, as umoci does not
  // but a user debugging an image wants: one row per remaining layer.
  for (; li < layers.length; li++) history.push({ layer: descriptorOnly(layers[li]!), diff_id: diffIds[li] ?? '' })
  const platform = [config.os, config.architecture, config.variant].filter(Boolean).join('/')
  const out: ImageStat = {
    history,
    manifest: { mediaType: manifestDesc.mediaType, digest: manifestDesc.digest, size: manifestDesc.size },
    imageId: manifest.config.digest,
    diffIds: [...diffIds],
    platform,
  }
  if (config.created !== undefined) out.created = config.created
  if (config.author !== undefined) out.author = config.author
  return out
}

function descriptorOnly(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size }
  if (d.annotations) out.annotations = d.annotations
  if (d.urls) out.urls = d.urls
  return out
}

/** A readable summary of one image, in the spirit of `skopeo inspect`. */
export interface ImageSummary {
  Name?: string
  Digest: string
  MediaType: string
  ImageId: string
  Created?: string
  Author?: string
  Architecture: string
  Os: string
  Variant?: string
  Labels: Record<string, string>
  Env: string[]
  Entrypoint: string[]
  Cmd: string[]
  User?: string
  WorkingDir?: string
  ExposedPorts: string[]
  Layers: string[]
  LayersData: Array<{ MIMEType: string; Digest: string; Size: number; Annotations?: Record<string, string> }>
  DiffIds: string[]
  Annotations?: Record<string, string>
  /** For an image picked from an index: the index's digest and the platforms it offers. */
  Index?: { Digest: string; Platforms: string[] }
}

export function summarizeImage(manifestDesc: Descriptor, manifest: Manifest, config: ImageConfig, name?: string): ImageSummary {
  const c = config.config ?? {}
  const s: ImageSummary = {
    Digest: manifestDesc.digest,
    MediaType: manifestDesc.mediaType,
    ImageId: manifest.config.digest,
    Architecture: config.architecture,
    Os: config.os,
    Labels: c.Labels ?? {},
    Env: c.Env ?? [],
    Entrypoint: c.Entrypoint ?? [],
    Cmd: c.Cmd ?? [],
    ExposedPorts: Object.keys(c.ExposedPorts ?? {}),
    Layers: manifest.layers.map((l) => l.digest),
    LayersData: manifest.layers.map((l) => ({ MIMEType: l.mediaType, Digest: l.digest, Size: l.size, ...(l.annotations ? { Annotations: l.annotations } : {}) })),
    DiffIds: config.rootfs?.diff_ids ?? [],
  }
  if (name !== undefined) s.Name = name
  if (config.created !== undefined) s.Created = config.created
  if (config.author !== undefined) s.Author = config.author
  if (config.variant !== undefined) s.Variant = config.variant
  if (c.User) s.User = c.User
  if (c.WorkingDir) s.WorkingDir = c.WorkingDir
  if (manifest.annotations) s.Annotations = manifest.annotations
  return s
}
