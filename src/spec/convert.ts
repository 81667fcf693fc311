/**
 * OCI <-> Docker image manifest v2 schema 2 conversion of manifests and indexes, following
 * image-spec media-types.md §Compatibility Matrix: the documents have the same shape, and
 * annotations, config.urls and the embedded `data` field exist only in OCI.
 *
 * Contract: these functions return new values and never mutate their input. They change media
 * types (and drop OCI-only fields when going to Docker); they do not touch digests or sizes.
 * Converting a manifest changes its bytes and so its digest, so a caller converting an index
 * must convert, store and re-describe each child manifest and replace the entries itself.
 * Anything Docker v2s2 cannot express (zstd layers, artifacts, subject, nested indexes,
 * platform-less list entries) is an UNSUPPORTED error naming the field, never a silent loss.
 */
import { LadingError } from '../errors.js'
import { MediaType } from './media-types.js'
import type { Descriptor, Index, Manifest } from './types.js'

export type ManifestFormat = 'oci' | 'v2s2'

const LAYER_TO_DOCKER: Record<string, string> = {
  [MediaType.OciLayer]: MediaType.DockerLayer,
  [MediaType.OciLayerGzip]: MediaType.DockerLayerGzip,
  // layer.md §Non-distributable layers: the OCI counterpart of Docker's foreign layers.
  [MediaType.OciLayerNondistGzip]: MediaType.DockerForeignLayer,
}
const LAYER_TO_OCI: Record<string, string> = {
  [MediaType.DockerLayer]: MediaType.OciLayer,
  [MediaType.DockerLayerGzip]: MediaType.OciLayerGzip,
  [MediaType.DockerLayerZstd]: MediaType.OciLayerZstd,
  [MediaType.DockerForeignLayer]: MediaType.OciLayerNondistGzip,
}
const DOCKER_LAYERS = new Set<string>([MediaType.DockerLayer, MediaType.DockerLayerGzip, MediaType.DockerLayerZstd, MediaType.DockerForeignLayer])

export function configMediaTypeFor(to: ManifestFormat): string {
  return to === 'v2s2' ? MediaType.DockerConfig : MediaType.OciConfig
}

export function manifestMediaTypeFor(to: ManifestFormat): string {
  return to === 'v2s2' ? MediaType.DockerManifest : MediaType.OciManifest
}

export function indexMediaTypeFor(to: ManifestFormat): string {
  return to === 'v2s2' ? MediaType.DockerManifestList : MediaType.OciIndex
}

function unsupported(what: string): LadingError {
  return new LadingError('UNSUPPORTED', `cannot convert to Docker v2 schema 2: ${what}`)
}

/** The layer media type in the other family; UNSUPPORTED where none exists (zstd, nondistributable tar/zstd). */
export function convertLayerMediaType(mediaType: string, to: ManifestFormat, pointer = 'layer'): string {
  if (to === 'oci') return LAYER_TO_OCI[mediaType] ?? mediaType
  if (DOCKER_LAYERS.has(mediaType)) return mediaType
  const m = LAYER_TO_DOCKER[mediaType]
  if (m !== undefined) return m
  if (mediaType === MediaType.OciLayerZstd || mediaType === MediaType.OciLayerNondistZstd) {
    throw unsupported(`${pointer} is zstd-compressed (${mediaType}); Docker v2 schema 2 has no zstd layer type; recompress to gzip first`)
  }
  throw unsupported(`${pointer} has media type ${mediaType}, which has no Docker v2 schema 2 equivalent`)
}

/** Copy of a descriptor without the OCI-only fields (media-types.md §Compatibility Matrix). */
function dockerDescriptor(d: Descriptor, mediaType: string, keepUrls: boolean): Descriptor {
  const out: Descriptor = { ...d, mediaType }
  delete out.annotations
  delete out.data
  delete out.artifactType
  if (!keepUrls) delete out.urls
  return out
}

/**
 * Convert an image manifest. Going to v2s2, the config must be an image config (v2s2 carries
 * no artifacts) and `subject`/`artifactType` must be absent; annotations are dropped, as the
 * compatibility matrix says they exist only in OCI.
 */
export function convertManifest(m: Manifest, to: ManifestFormat): Manifest {
  if (to === 'oci') {
    const out: Manifest = { ...m, mediaType: MediaType.OciManifest }
    out.config = { ...m.config, mediaType: m.config.mediaType === MediaType.DockerConfig ? MediaType.OciConfig : m.config.mediaType }
    out.layers = m.layers.map((l) => ({ ...l, mediaType: convertLayerMediaType(l.mediaType, 'oci') }))
    return out
  }
  if (m.config.mediaType !== MediaType.OciConfig && m.config.mediaType !== MediaType.DockerConfig) {
    throw unsupported(`/config/mediaType is ${m.config.mediaType}: only container images (an image config) exist in v2s2, not artifacts`)
  }
  if (m.subject !== undefined) throw unsupported('/subject is set; v2s2 has no subject (referrers) field')
  if (m.artifactType !== undefined) throw unsupported('/artifactType is set; v2s2 has no artifacts')
  const layers = m.layers.map((l, i) => dockerDescriptor(l, convertLayerMediaType(l.mediaType, 'v2s2', `/layers/${i}`), true))
  const out: Manifest = { ...m, mediaType: MediaType.DockerManifest, config: dockerDescriptor(m.config, MediaType.DockerConfig, false), layers }
  delete out.annotations
  return out
}

/**
 * Convert an index / manifest list: the document's media type and its entries' media types.
 * See the module contract: entry digests still name the unconverted children.
 */
export function convertIndex(i: Index, to: ManifestFormat): Index {
  if (to === 'oci') {
    return {
      ...i,
      mediaType: MediaType.OciIndex,
      manifests: i.manifests.map((d) => ({
        ...d,
        mediaType:
          d.mediaType === MediaType.DockerManifest ? MediaType.OciManifest : d.mediaType === MediaType.DockerManifestList ? MediaType.OciIndex : d.mediaType,
      })),
    }
  }
  if (i.subject !== undefined) throw unsupported('/subject is set; a manifest list has no subject field')
  if (i.artifactType !== undefined) throw unsupported('/artifactType is set; a manifest list has no artifacts')
  const manifests = i.manifests.map((d, n) => {
    if (d.mediaType !== MediaType.OciManifest && d.mediaType !== MediaType.DockerManifest) {
      throw unsupported(`/manifests/${n} is ${d.mediaType}; a manifest list may only list image manifests`)
    }
    if (d.platform === undefined) throw unsupported(`/manifests/${n} has no platform, which a manifest list requires`)
    return dockerDescriptor(d, MediaType.DockerManifest, false)
  })
  const out: Index = { ...i, mediaType: MediaType.DockerManifestList, manifests }
  delete out.annotations
  return out
}
