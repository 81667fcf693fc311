/**
 * Progress of long work on blobs (a copy, an unpack, a validation), delivered to an onProgress
 * callback in the order it happens, and the stream that counts bytes for it. Kept here, low in
 * the module order, so that copy/, bundle/ and store/ report the same events and the CLI prints
 * them with one printer (src/cli/progress.ts).
 * Blob events carry the SOURCE descriptor's digest (what a user recognises from the source);
 * `stored` says what the destination holds when that differs (recompressed, decompressed).
 */
import { Transform, type TransformCallback } from 'node:stream'
import type { Digest } from '../digest/digest.js'

/**
 * What happens to a blob's bytes: copied as they are, compressed (from none), decompressed (to
 * none) or recompressed; a layer unpacked into a rootfs; a blob verified (read and hashed); a
 * new layer written (its uncompressed bytes counted).
 */
export type BlobAction = 'copy' | 'compress' | 'decompress' | 'recompress' | 'unpack' | 'verify' | 'write'

/**
 * The key of a blob whose digest is not known until it is written (repack's new layer): its
 * events carry this in `digest`, with size 0 (unknown); blob-done's `stored` names the result.
 */
export const NEW_LAYER = 'new layer' as Digest

export type ProgressEvent =
  | { type: 'blob-start'; digest: Digest; size: number; mediaType: string; action: BlobAction }
  | { type: 'blob-progress'; digest: Digest; bytes: number; size: number }
  /** The destination already had the blob; nothing was sent. */
  | { type: 'blob-exists'; digest: Digest; size: number }
  /** Not sent, for `reason` (mounted from another repository of the same registry). */
  | { type: 'blob-skipped'; digest: Digest; size: number; reason: string }
  | { type: 'blob-done'; digest: Digest; size: number; stored: { digest: Digest; size: number; mediaType: string } }
  | { type: 'manifest'; digest: Digest; mediaType: string; tag?: string }
  | { type: 'warning'; message: string }

export type ProgressCallback = (e: ProgressEvent) => void

/** Counts bytes through and reports progress, at most every 100 ms per blob. */
export class ProgressStream extends Transform {
  readonly #emit: (bytes: number) => void
  #bytes = 0
  #last = 0
  #reported = 0
  constructor(emit: (bytes: number) => void) {
    super({ highWaterMark: 256 * 1024 })
    this.#emit = emit
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.#bytes += chunk.length
    const now = Date.now()
    if (now - this.#last >= 100) {
      this.#last = now
      this.#reported = this.#bytes
      this.#emit(this.#bytes)
    }
    cb(null, chunk)
  }
  override _flush(cb: TransformCallback): void {
    if (this.#bytes !== this.#reported) this.#emit(this.#bytes)
    cb()
  }
}
