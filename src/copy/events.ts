/**
 * Progress events of a copy, delivered to CopyOptions.onProgress in the order they happen.
 * Blob events carry the SOURCE descriptor's digest (what a user recognises from the source);
 * `stored` says what the destination holds when that differs (recompressed, decompressed).
 */
import type { Digest } from '../digest/digest.js'

/** What happens to a blob's bytes: as they are, or compressed (from none), decompressed (to none), recompressed. */
export type BlobAction = 'copy' | 'compress' | 'decompress' | 'recompress'

export type CopyEvent =
  | { type: 'blob-start'; digest: Digest; size: number; mediaType: string; action: BlobAction }
  | { type: 'blob-progress'; digest: Digest; bytes: number; size: number }
  /** The destination already had the blob; nothing was sent. */
  | { type: 'blob-exists'; digest: Digest; size: number }
  /** Not sent, for `reason` (mounted from another repository of the same registry). */
  | { type: 'blob-skipped'; digest: Digest; size: number; reason: string }
  | { type: 'blob-done'; digest: Digest; size: number; stored: { digest: Digest; size: number; mediaType: string } }
  | { type: 'manifest'; digest: Digest; mediaType: string; tag?: string }
  | { type: 'warning'; message: string }

export type ProgressCallback = (e: CopyEvent) => void
