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
export const POOL_BLOCK_SIZE = 1024 * 1024
const MAX_POOLED = 8

const free: Buffer[] = []
const ours = new WeakSet<ArrayBufferLike>()

export function takeBlock(): Buffer {
  const b = free.pop()
  if (b) return b
  const fresh = Buffer.allocUnsafeSlow(POOL_BLOCK_SIZE)
  ours.add(fresh.buffer)
  return fresh
}

/** Give back a whole block from takeBlock (views and foreign buffers are ignored). */
export function returnBlock(b: Buffer): void {
  if (b.byteOffset !== 0 || b.length !== POOL_BLOCK_SIZE || !ours.has(b.buffer) || free.length >= MAX_POOLED) return
  if (free.includes(b)) return
  free.push(b)
}
