/**
 * Every place an image lives is a transport with a reference, a source and a destination;
 * one copy engine (src/copy) moves images between any two. Capabilities are data, so the
 * copy engine asks instead of catching "not supported" errors.
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../digest/digest.js'
import type { Descriptor, RawManifest } from '../spec/types.js'

export type ImageReference =
  | { transport: 'oci'; dir: string; tag?: string; digest?: Digest }
  | { transport: 'oci-archive'; file: string; tag?: string }
  | { transport: 'docker-archive'; file: string; name?: string; tag?: string; /** `FILE:@N`: the Nth image of manifest.json (sources only) */ sourceIndex?: number }
  | { transport: 'dir'; dir: string }
  | { transport: 'docker'; registry: string; repository: string; tag?: string; digest?: Digest }

export type TransportName = ImageReference['transport']

export interface ImageSource {
  readonly ref: ImageReference
  /**
   * The manifest (or index) the reference names when `digest` is omitted; with a digest,
   * that manifest from the same repository/layout. Bytes are returned exactly as stored and
   * verified against `digest` when one is given.
   */
  getManifest(digest?: Digest): Promise<RawManifest>
  /** A stream of the blob's bytes that errors before it ends unless size and digest match. */
  getBlob(desc: Descriptor): Promise<Readable>
  /**
   * Optional: a small blob's verified bytes (a config), for sources that read one more cheaply
   * whole than as a stream (a layout reads it in one synchronous read). SIZE_LIMIT above `maxBytes`.
   */
  readSmallBlob?(desc: Descriptor, maxBytes: number): Promise<Buffer>
  /** Optional: manifests that refer to `digest` (distribution-spec §Listing Referrers). */
  listReferrers?(digest: Digest): Promise<Descriptor[]>
  close(): Promise<void>
}

export interface DestinationCapabilities {
  /** Manifest media types the destination can store (in preference order). */
  manifestTypes: readonly string[]
  /** Can it store an index / manifest list (several images under one name)? */
  multiImage: boolean
  /** Does it keep blobs exactly (digests preserved)? docker-archive stores layers uncompressed. */
  preservesBlobs: boolean
  /** Layer compressions it can store. */
  compressions: readonly ('none' | 'gzip' | 'zstd')[]
  /**
   * Uncompressed layers are compressed on the way in (gzip, or CopyOptions.destCompressFormat)
   * unless the copy says otherwise (--dest-decompress, --preserve-digests): what skopeo does for
   * registries, oci: and oci-archive: (containers/image DesiredLayerCompression: Compress).
   */
  compressUncompressed?: boolean
  /** Cross-repository blob mount (registries only). */
  mount?: boolean
}

export interface PutBlobOptions {
  reopen?: () => Promise<Readable>
}

export interface ImageDestination {
  readonly ref: ImageReference
  readonly capabilities: DestinationCapabilities
  hasBlob(desc: Descriptor): Promise<boolean>
  /**
   * Store a blob. It becomes visible only once the whole stream verified against `expected`
   * (when given); returns the descriptor of what was stored. `opts.reopen`, when given, yields
   * a fresh stream of the same bytes: a destination that cannot replay what it sent (a
   * registry upload streamed in one request) uses it to start over after a transient failure.
   */
  putBlob(body: Readable, expected?: Partial<Descriptor>, opts?: PutBlobOptions): Promise<Descriptor>
  /** Optional: make a blob from another repository of the same registry available without copying. */
  mountBlob?(desc: Descriptor, fromRepository: string): Promise<boolean>
  /** Store a manifest or index. With `tag`, the image is also named by it (the top-level one). */
  putManifest(raw: RawManifest, tag?: string): Promise<Descriptor>
  /** Make everything put so far durable and visible as the named image. */
  commit(): Promise<void>
  close(): Promise<void>
}
