/**
 * Every place an image lives is a transport with a reference, a source and a destination;
 * one copy engine (src/copy) moves images between any two. Capabilities are data, so the
 * copy engine asks instead of catching "not supported" errors.
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../digest/digest.js'
import type { Descriptor, RawManifest } from '../spec/types.js'
import type { RetryOptions } from './registry/retry.js'

/** One reference type per transport; ./reference.ts parses and formats them. */
export interface OciReference {
  transport: 'oci'
  dir: string
  tag?: string
  digest?: Digest
}
export interface OciArchiveReference {
  transport: 'oci-archive'
  file: string
  tag?: string
}
export interface DockerArchiveReference {
  transport: 'docker-archive'
  file: string
  name?: string
  tag?: string
  /** `FILE:@N`: the Nth image of manifest.json (sources only) */
  sourceIndex?: number
}
export interface DirReference {
  transport: 'dir'
  dir: string
}
/** `registry` and `repository` are normalised by ./docker-reference.ts (docker.io, library/). */
export interface DockerReference {
  transport: 'docker'
  registry: string
  repository: string
  tag?: string
  digest?: Digest
}

export type ImageReference = OciReference | OciArchiveReference | DockerArchiveReference | DirReference | DockerReference

export type TransportName = ImageReference['transport']
export type ReferenceOf<N extends TransportName> = Extract<ImageReference, { transport: N }>

/** Options for every transport; the registry ones are passed through to the registry transport. */
export interface TransportOptions {
  /** Registry: verify TLS (default true); false also allows plain HTTP, as skopeo's --tls-verify=false. */
  tlsVerify?: boolean
  /** Registry: a directory of *.crt CAs and *.cert/*.key client certificates (containers-certs.d). */
  certDir?: string
  /** Registry: credentials given on the command line (USER:PASS). */
  creds?: { username: string; password: string }
  /** Registry: an auth file instead of the default ones. */
  authFile?: string
  /** Registry: the inactivity timeout of every request in ms (RegistryOptions.timeoutMs; default 60 s). */
  timeoutMs?: number
  /** Registry: attempts for transient failures (skopeo's --retry-times N is attempts N+1). */
  retry?: RetryOptions
  /** Where archive transports spool temporary files (default os.tmpdir(), or beside the target). */
  tmpDir?: string
  /** Destination streams for `docker-archive:-`; default process.stdout. */
  stdout?: NodeJS.WritableStream
  /** Source stream for `docker-archive:-`/`oci-archive:-`; default process.stdin. */
  stdin?: NodeJS.ReadableStream
}

/**
 * The spelling of one transport's references (./reference.ts holds all five, so that parsing
 * and formatting load no transport code).
 */
export interface ReferenceSyntax<N extends TransportName = TransportName> {
  readonly name: N
  /** The accepted forms, for messages: `oci:DIR[:TAG|@DIGEST]`. */
  readonly form: string
  /** `body` is what follows `NAME:`. INVALID_REFERENCE saying what is wrong. */
  parse(body: string): ReferenceOf<N>
  /** The canonical spelling: `parse` of it (after the prefix) gives the same value. USAGE if no string names `ref`. */
  format(ref: ReferenceOf<N>): string
  /** The place an image lives, without tag or digest, for messages: `oci:DIR`, `docker://REGISTRY/REPO`. */
  display(ref: ReferenceOf<N>): string
}

/**
 * A transport as a registered object (./open.ts is the table of them): its reference syntax,
 * what its destinations can store (known before one is opened), and how to open either end.
 * Opening loads the transport's code on demand, so the table itself is cheap to import.
 */
export interface Transport<N extends TransportName = TransportName> extends ReferenceSyntax<N> {
  readonly capabilities: DestinationCapabilities
  openSource(ref: ReferenceOf<N>, opts: TransportOptions): Promise<ImageSource>
  openDestination(ref: ReferenceOf<N>, opts: TransportOptions): Promise<ImageDestination>
}

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
  /** Idempotent; a source is also AsyncDisposable (`await using src = await openSource(r)`). */
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
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
  /**
   * Idempotent; without commit() first, removes what this destination made. A destination is
   * also AsyncDisposable (`await using dest = await openDestination(r)`): disposal is close().
   */
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}
