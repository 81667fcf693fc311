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

/**
 * A readable summary of one image: first `skopeo inspect`'s keys, in its order and with its
 * meanings (Name, Digest, RepoTags, Created, DockerVersion, Labels, Architecture, Os, Variant,
 * Layers, LayersData, Env), so that scripts written for skopeo (`jq .RepoTags`) work; then
 * Lading's own (MediaType, ImageId, Author, Entrypoint, Cmd, User, WorkingDir, ExposedPorts,
 * DiffIds, Annotations, Index). Labels and Env are {} and [] when the config has none
 * (skopeo prints null).
 */
export interface ImageSummary {
  /** skopeo: the Docker reference's name without tag (`registry/repo`); others: the reference given. */
  Name?: string
  /** The digest of the top-level manifest as fetched: an index's, when the reference names one (as skopeo). */
  Digest: string
  /** The repository's tags for a registry image (as skopeo lists them); [] for other transports. */
  RepoTags: string[]
  Created?: string
  /** The Docker config's `docker_version`; "" when absent (OCI images), as skopeo. */
  DockerVersion: string
  Labels: Record<string, string>
  Architecture: string
  Os: string
  Variant?: string
  Layers: readonly string[]
  LayersData: Array<{ MIMEType: string; Digest: string; Size: number; Annotations?: Record<string, string> }>
  Env: readonly string[]
  /** The image manifest's media type (of the manifest picked from an index, if any). */
  MediaType: string
  ImageId: string
  Author?: string
  Entrypoint: readonly string[]
  Cmd: readonly string[]
  User?: string
  WorkingDir?: string
  ExposedPorts: string[]
  DiffIds: readonly string[]
  Annotations?: Record<string, string>
  /** For an image picked from an index: the index's digest, the platforms it offers, and the picked manifest's digest. */
  Index?: { Digest: string; Platforms: string[]; ImageDigest: string }
}

export interface SummaryExtras {
  /** The name to show (see ImageSummary.Name). */
  name?: string
  repoTags?: string[]
  /** The index the image was picked from, with the platforms it offers. */
  index?: { digest: string; platforms: string[] }
}

/** `extras` may be the name alone (the signature before RepoTags and Index were added). */
export function summarizeImage(manifestDesc: Descriptor, manifest: Manifest, config: ImageConfig, extrasOrName: SummaryExtras | string = {}): ImageSummary {
  const extras: SummaryExtras = typeof extrasOrName === 'string' ? { name: extrasOrName } : extrasOrName
  const c = config.config ?? {}
  // Not part of ImageConfig's type (a Docker extension), but kept by the parser like any field.
  const dockerVersion = (config as { docker_version?: unknown }).docker_version
  const s: ImageSummary = {
    ...(extras.name !== undefined ? { Name: extras.name } : {}),
    Digest: extras.index?.digest ?? manifestDesc.digest,
    RepoTags: extras.repoTags ?? [],
    ...(config.created !== undefined ? { Created: config.created } : {}),
    DockerVersion: typeof dockerVersion === 'string' ? dockerVersion : '',
    Labels: c.Labels ?? {},
    Architecture: config.architecture,
    Os: config.os,
    ...(config.variant !== undefined ? { Variant: config.variant } : {}),
    Layers: manifest.layers.map((l) => l.digest),
    LayersData: manifest.layers.map((l) => ({
      MIMEType: l.mediaType,
      Digest: l.digest,
      Size: l.size,
      ...(l.annotations ? { Annotations: l.annotations } : {}),
    })),
    Env: c.Env ?? [],
    MediaType: manifestDesc.mediaType,
    ImageId: manifest.config.digest,
    ...(config.author !== undefined ? { Author: config.author } : {}),
    Entrypoint: c.Entrypoint ?? [],
    Cmd: c.Cmd ?? [],
    ...(c.User ? { User: c.User } : {}),
    ...(c.WorkingDir ? { WorkingDir: c.WorkingDir } : {}),
    ExposedPorts: Object.keys(c.ExposedPorts ?? {}),
    DiffIds: config.rootfs?.diff_ids ?? [],
    ...(manifest.annotations ? { Annotations: manifest.annotations } : {}),
  }
  if (extras.index) s.Index = { Digest: extras.index.digest, Platforms: extras.index.platforms, ImageDigest: manifestDesc.digest }
  return s
}
