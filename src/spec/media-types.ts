/**
 * Media types, defined once. OCI: image-spec media-types.md; Docker: the v2 schema 2 spec
 * (image-spec media-types.md §Compatibility Matrix lists the correspondences).
 */
export const MediaType = {
  // OCI (image-spec media-types.md)
  OciLayoutHeader: 'application/vnd.oci.layout.header.v1+json',
  OciDescriptor: 'application/vnd.oci.descriptor.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  /** Deprecated by image-spec v1.1 (layer.md §Non-distributable layers) but still readable. */
  OciLayerNondist: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciLayerNondistZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  // Docker image manifest v2 schema 2
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  DockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerPluginConfig: 'application/vnd.docker.plugin.v1+json',
  /** Schema 1 is recognised only to refuse it clearly. */
  DockerManifestV1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const
export type KnownMediaType = (typeof MediaType)[keyof typeof MediaType]

import type { Compression } from '../io/compression.js'
export type { Compression }

export function isIndexMediaType(m: string | undefined): boolean {
  return m === MediaType.OciIndex || m === MediaType.DockerManifestList
}
export function isManifestMediaType(m: string | undefined): boolean {
  return m === MediaType.OciManifest || m === MediaType.DockerManifest
}
export function isConfigMediaType(m: string | undefined): boolean {
  return m === MediaType.OciConfig || m === MediaType.DockerConfig
}

interface LayerInfo {
  compression: Compression
  docker: boolean
  nondistributable: boolean
}
const LAYERS: Record<string, LayerInfo> = {
  [MediaType.OciLayer]: { compression: 'none', docker: false, nondistributable: false },
  [MediaType.OciLayerGzip]: { compression: 'gzip', docker: false, nondistributable: false },
  [MediaType.OciLayerZstd]: { compression: 'zstd', docker: false, nondistributable: false },
  [MediaType.OciLayerNondist]: { compression: 'none', docker: false, nondistributable: true },
  [MediaType.OciLayerNondistGzip]: { compression: 'gzip', docker: false, nondistributable: true },
  [MediaType.OciLayerNondistZstd]: { compression: 'zstd', docker: false, nondistributable: true },
  [MediaType.DockerLayer]: { compression: 'none', docker: true, nondistributable: false },
  [MediaType.DockerLayerGzip]: { compression: 'gzip', docker: true, nondistributable: false },
  [MediaType.DockerLayerZstd]: { compression: 'zstd', docker: true, nondistributable: false },
  [MediaType.DockerForeignLayer]: { compression: 'gzip', docker: true, nondistributable: true },
}

/** Facts about a layer media type, or undefined if it is not a filesystem layer type. */
export function layerInfo(m: string): LayerInfo | undefined {
  return LAYERS[m]
}
export function isLayerMediaType(m: string | undefined): boolean {
  return m !== undefined && m in LAYERS
}

/** The layer media type for a compression in the OCI or Docker family. */
export function layerMediaType(compression: Compression, docker = false): string {
  if (docker) return compression === 'gzip' ? MediaType.DockerLayerGzip : compression === 'zstd' ? MediaType.DockerLayerZstd : MediaType.DockerLayer
  return compression === 'gzip' ? MediaType.OciLayerGzip : compression === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayer
}

/** RFC 6838 media type grammar, as image-spec descriptor.md §Properties requires. */
export const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/

/** Annotation keys used by Lading (image-spec annotations.md §Pre-Defined Annotation Keys). */
export const Annotation = {
  RefName: 'org.opencontainers.image.ref.name',
  Created: 'org.opencontainers.image.created',
  Authors: 'org.opencontainers.image.authors',
  Title: 'org.opencontainers.image.title',
  BaseDigest: 'org.opencontainers.image.base.digest',
  BaseName: 'org.opencontainers.image.base.name',
  /** containerd's key for the full image name in `docker save`-style OCI archives. */
  ContainerdImageName: 'io.containerd.image.name',
} as const
