/**
 * The documents of image-spec v1.1 as TypeScript types. These describe *validated* values:
 * the parsers in parse.ts turn untrusted bytes into them or throw. Unknown fields are kept
 * (image-spec descriptor.md and manifest.md: implementations MUST ignore unknown properties)
 * because documents are stored and copied byte-for-byte, never re-serialised by accident.
 */
import type { Digest } from '../digest/digest.js'

/** image-spec descriptor.md §Properties */
export interface Descriptor {
  mediaType: string
  digest: Digest
  size: number
  urls?: readonly string[]
  annotations?: Record<string, string>
  data?: string
  artifactType?: string
  /** Only meaningful in an index's manifests (image-index.md §platform). */
  platform?: Platform
}

/** image-index.md §platform and config.md §Properties (architecture, os, variant, ...). */
export interface Platform {
  architecture: string
  os: string
  'os.version'?: string
  'os.features'?: readonly string[]
  variant?: string
  features?: readonly string[]
}

/** image-spec manifest.md (also models Docker v2 schema 2, which has the same shape). */
export interface Manifest {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  config: Descriptor
  layers: readonly Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

/** image-spec image-index.md (also models the Docker manifest list). */
export interface Index {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  manifests: readonly Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

/** image-spec config.md §Properties: config */
export interface ContainerConfig {
  User?: string
  ExposedPorts?: Record<string, object>
  Env?: readonly string[]
  Entrypoint?: readonly string[] | null
  Cmd?: readonly string[] | null
  Volumes?: Record<string, object>
  WorkingDir?: string
  Labels?: Record<string, string>
  StopSignal?: string
  ArgsEscaped?: boolean
  [docker: string]: unknown
}

export interface History {
  created?: string
  created_by?: string
  author?: string
  comment?: string
  empty_layer?: boolean
}

/** image-spec config.md */
export interface ImageConfig {
  created?: string
  author?: string
  architecture: string
  os: string
  'os.version'?: string
  'os.features'?: readonly string[]
  variant?: string
  config?: ContainerConfig
  rootfs: { type: 'layers'; diff_ids: readonly Digest[] }
  history?: readonly History[]
  [docker: string]: unknown
}

/** image-layout.md §oci-layout file */
export interface OciLayoutFile {
  imageLayoutVersion: string
}

/** A manifest or index as stored: the exact bytes, their media type and digest. */
export interface RawManifest {
  bytes: Buffer
  mediaType: string
  digest: Digest
}
