/**
 * Reusable 1 MiB blocks for the layer-writing pipeline (tar writer -> diff_id hash -> gzip).
 *
 * Writing a 200 MB layer allocates 200 such blocks; each is a fresh external allocation that
 * V8 answers with full mark-compacts (about every 20-30 MB) and that the kernel must fault in and
 * zero. Handing blocks back once the gzip encoder is done with them removes most of that.
 *
 * Contract: only blocks made here are ever pooled (checked by identity), and a block is handed
 * back only by a consumer that knows it holds the last reference (ParallelGzip with
 * `recycleInput`, used by appendLayer on a tar stream it owns). A block never handed back is
 * simply garbage collected.
 */
import type { FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'

export const POOL_BLOCK_SIZE = 1024 * 1024
const MAX_POOLED = 8

const free: Buffer[] = []
const ours = new WeakSet<ArrayBufferLike>()
let made = 0

/** Blocks made so far and blocks waiting in the pool (for tests). */
export function poolStats(): { made: number; free: number } {
  return { made, free: free.length }
}

export function takeBlock(): Buffer {
  const b = free.pop()
  if (b) return b
  const fresh = Buffer.allocUnsafeSlow(POOL_BLOCK_SIZE)
  ours.add(fresh.buffer)
  made++
  return fresh
}

/** Empty the pool (the start-up snapshot must not carry blocks made while it was built). */
export function drainPool(): void {
  free.length = 0
}

/** Give back a whole block from takeBlock (views and foreign buffers are ignored). */
export function returnBlock(b: Buffer): void {
  if (b.byteOffset !== 0 || b.length !== POOL_BLOCK_SIZE || !ours.has(b.buffer) || free.length >= MAX_POOLED) return
  if (free.includes(b)) return
  free.push(b)
}

/**
 * A file read into pool blocks, for blob bodies that go out to a socket: the HTTP layer
 * (src/transport/registry/http.ts) hands each block back once the kernel has taken it, so a
 * 100 MB upload cycles through a few blocks instead of faulting in 100 fresh ones. Closes the
 * file when it ends or is destroyed.
 */
export class PooledFileReader extends Readable {
  readonly #fh: FileHandle
  constructor(fh: FileHandle) {
    super({ highWaterMark: POOL_BLOCK_SIZE })
    this.#fh = fh
  }

  override _read(): void {
    const block = takeBlock()
    this.#fh.read(block, 0, block.length, null).then(({ bytesRead }) => {
      if (bytesRead === 0) {
        returnBlock(block)
        this.push(null)
      } else {
        this.push(bytesRead === block.length ? block : block.subarray(0, bytesRead))
      }
    }, (e: Error) => {
      returnBlock(block)
      this.destroy(e)
    })
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.#fh.close().then(() => cb(err), (e: Error) => cb(err ?? e))
  }
}
