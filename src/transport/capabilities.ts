/**
 * What each transport's destinations can store, as data: the table of transports (./open.ts)
 * offers it before a destination is opened, and each destination reports the same object. Kept
 * apart from the destinations so that reading it loads no transport code.
 */
import { MediaType } from '../spec/media-types.js'
import type { DestinationCapabilities } from './types.js'

/** oci: and oci-archive: (an OCI image layout): OCI documents only (image-layout.md). */
export const OCI_CAPABILITIES: DestinationCapabilities = {
  manifestTypes: [MediaType.OciManifest, MediaType.OciIndex],
  multiImage: true,
  preservesBlobs: true,
  compressions: ['gzip', 'zstd', 'none'],
  // As skopeo's oci transport (DesiredLayerCompression: Compress): uncompressed layers, e.g. from
  // a docker-archive:, are stored gzip-compressed (a third of the size) unless --preserve-digests.
  compressUncompressed: true,
}

/** dir: stores manifest bytes as they come, OCI or Docker. */
export const DIR_CAPABILITIES: DestinationCapabilities = {
  manifestTypes: [MediaType.OciManifest, MediaType.DockerManifest, MediaType.OciIndex, MediaType.DockerManifestList],
  multiImage: true,
  preservesBlobs: true,
  compressions: ['gzip', 'zstd', 'none'],
}

/** docker-archive: `docker save` format: one Docker v2s2 image, layers stored uncompressed. */
export const DOCKER_ARCHIVE_CAPABILITIES: DestinationCapabilities = {
  manifestTypes: [MediaType.DockerManifest],
  multiImage: false,
  preservesBlobs: false,
  compressions: ['none'],
}

/** docker://: a registry, which also mounts blobs across repositories. */
export const REGISTRY_CAPABILITIES: DestinationCapabilities = {
  manifestTypes: [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList],
  multiImage: true,
  preservesBlobs: true,
  compressions: ['none', 'gzip', 'zstd'],
  compressUncompressed: true,
  mount: true,
}
