/**
 * The blob store: content-addressed bytes, whatever holds them (an OCI layout's blobs/ on disk
 * in src/store/fs/, memory in src/store/memory/, an object store later). Everything above it
 * (Layout, gc, referrers, resolve, the registry server) is written against these interfaces.
 *
 * Contracts every implementation keeps (test/store/contract/blob-store.ts checks them):
 * - Every read verifies: `get` returns a stream that errors *before it ends* on a size or
 *   digest mismatch (src/digest/verify.ts); `read` verifies in memory. BLOB_UNKNOWN if absent.
 * - `put` makes a blob visible (to stat, get, read, list) only once its whole content verified
 *   against `expected`; a failed put leaves nothing visible. It is idempotent: a blob already
 *   present (of the expected size) is kept, touched, and the body is not read.
 * - `delete` of an absent blob is not an error; `list` yields each visible blob once.
 * - Upload sessions (optional, for a registry server; distribution-spec §Pushing blobs): chunks
 *   are appended at the offset the session has reached (anything else is refused, spec
 *   §Pushing a blob in chunks: 416 Range Not Satisfiable); `commit` verifies the whole upload
 *   against the expected digest and makes it visible like `put`, or removes it.
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../digest/digest.js'

/** What a descriptor tells a reader: the digest, and the size when known. */
export interface BlobRef {
  digest: Digest
  size?: number | undefined
}

export interface BlobInfo {
  digest: Digest
  size: number
}

export interface BlobStat extends BlobInfo {
  /** When the blob was last written or touched (ms since the epoch): gc's writer-lease rule. */
  modifiedMs: number
}

/** What `put` checks the bytes against; `name` is used in error messages. */
export interface BlobExpectation {
  digest?: Digest
  size?: number
  name?: string
}

/**
 * Reading blobs, verified: all that unpacking, resolving or copying needs. A layout, an
 * in-memory store and an adapter over a transport source can all be one.
 */
export interface BlobReader {
  /** A stream that errors before it ends unless size and digest match. BLOB_UNKNOWN if absent. */
  get(desc: BlobRef): Promise<Readable>
  /** The verified bytes of a small blob (documents); SIZE_LIMIT above `maxBytes`. */
  read(desc: BlobRef, maxBytes?: number): Promise<Buffer>
}

export interface BlobStore extends BlobReader {
  /** Size and modification time; undefined when absent. */
  stat(digest: Digest): Promise<BlobStat | undefined>
  /** Store a blob, visible only once verified; idempotent (see the module comment). */
  put(body: Readable | Uint8Array, expected?: BlobExpectation): Promise<BlobInfo>
  /** Remove a blob; absent is not an error. */
  delete(digest: Digest): Promise<void>
  /** Every visible blob, each once; in-progress writes are never listed. */
  list(): AsyncIterable<BlobInfo>
  /**
   * Mark a blob as just used (modifiedMs = now) when a writer reuses it instead of writing it,
   * so gc counts it as young (src/store/writer-lease.ts). Best effort; absent is not an error.
   */
  touch(digest: Digest): Promise<void>
  /** Remove what interrupted writes left behind (writers that are gone); for gc. */
  sweep?(): Promise<{ filesRemoved: number; bytesRemoved: number }>
  /** Resumable uploads, for a registry server; absent when the backend has none. */
  readonly uploads?: UploadSessions
}

export interface UploadStatus {
  id: string
  /** Bytes received so far: the offset the next chunk must start at. */
  size: number
  /** Whom the session was started for (a registry's repository), as given to `start`. */
  owner?: string | undefined
  /** When the session last received bytes (ms since the epoch): what `sweep` reads. */
  lastActiveMs: number
}

/**
 * Resumable uploads (distribution-spec §Pushing blobs). Where `durable` is true, the sessions
 * outlive this object: a new store over the same place (a restarted server) sees them, with the
 * size they reached, and can append, commit or abort them.
 */
export interface UploadSessions {
  readonly durable: boolean
  start(owner?: string): Promise<UploadStatus>
  /**
   * Append `chunk` at `offset`, which must be the session's current size (CONFLICT otherwise,
   * and nothing is appended); undefined appends at the end (a streamed upload). `length`, when
   * given, is what the chunk declares: SIZE_MISMATCH if it disagrees, and nothing is appended.
   * A chunk that fails midway is cut back, so the session stays at its earlier size. Chunks of
   * one session are applied one at a time. Returns the new status. NOT_FOUND for an unknown session.
   */
  append(id: string, offset: number | undefined, chunk: Readable | Uint8Array, length?: number): Promise<UploadStatus>
  /** NOT_FOUND for an unknown (or expired) session. */
  status(id: string): Promise<UploadStatus>
  /**
   * Verify the whole upload against `expected` and make it visible as a blob; a mismatch ends the
   * session (DIGEST_MISMATCH or SIZE_MISMATCH, and nothing becomes visible).
   */
  commit(id: string, expected: { digest: Digest; size?: number }): Promise<BlobInfo>
  /** Drop the session and its bytes; an unknown session is not an error. */
  abort(id: string): Promise<void>
  /** Every open session. */
  list(): Promise<UploadStatus[]>
  /** Abort sessions idle at least `maxIdleMs`; says how many, and the bytes they held. */
  sweep(maxIdleMs: number, now?: number): Promise<{ sessions: number; bytes: number }>
}
