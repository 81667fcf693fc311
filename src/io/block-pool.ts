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
import { Readable, Writable } from 'node:stream'

export const POOL_BLOCK_SIZE = 1024 * 1024
const MAX_POOLED = 8

const free: Buffer[] = []
const ours = new WeakSet<ArrayBufferLike>()
let made = 0

/** Blocks made so far and blocks waiting in the pool (for tests). */
export function poolStats(): { made: number; free: number; outMade: number; outFree: number } {
  return { made, free: free.length, outMade, outFree: freeOut.length }
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
  freeOut.length = 0
}

/** Give back a whole block from takeBlock (views and foreign buffers are ignored). */
export function returnBlock(b: Buffer): void {
  if (b.byteOffset !== 0 || b.length !== POOL_BLOCK_SIZE || !ours.has(b.buffer) || free.length >= MAX_POOLED) return
  if (free.includes(b)) return
  free.push(b)
}

/**
 * Output blocks of the gzip encoder (src/io/gzip-parallel.ts with `recycleOutput`): room for one
 * compressed 1 MiB block at libdeflate's bound (the input plus 5 bytes per 5,000 when it stores,
 * and the gzip header and trailer; 64 KiB covers it). The encoder pushes a view of the part it
 * wrote, and the blob writer that ends the stream (Layout.putBlob) hands the block back once the
 * file has it. Without this every compressed block was garbage for V8 to find, and a repack's
 * peak RSS carried some 50 MB of them.
 */
export const OUT_BLOCK_SIZE = POOL_BLOCK_SIZE + 64 * 1024
/** The most that can wait in a blob writer's queue (8 MiB) plus the encoder's, in compressed blocks. */
const MAX_OUT_POOLED = 32

const freeOut: ArrayBuffer[] = []
let outMade = 0
/** Output blocks handed out and not yet given back: only these are taken back, once. */
const lentOut = new WeakSet<ArrayBufferLike>()

export function takeOutBlock(): Buffer {
  const ab = freeOut.pop()
  const block = ab ? Buffer.from(ab, 0, OUT_BLOCK_SIZE) : Buffer.allocUnsafeSlow(OUT_BLOCK_SIZE)
  if (!ab) outMade++
  lentOut.add(block.buffer)
  return block
}

/**
 * Give back the output block a view of it belongs to (any other buffer is ignored). Only for
 * the last holder of every view of that block: the blob writer, once the file has the bytes.
 */
export function returnOutBlock(view: Uint8Array): void {
  const ab = view.buffer
  if (!lentOut.has(ab)) return
  lentOut.delete(ab)
  if (freeOut.length < MAX_OUT_POOLED) freeOut.push(ab as ArrayBuffer)
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
    this.#fh.read(block, 0, block.length, null).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) {
          returnBlock(block)
          this.push(null)
        } else {
          this.push(bytesRead === block.length ? block : block.subarray(0, bytesRead))
        }
      },
      (e: Error) => {
        returnBlock(block)
        this.destroy(e)
      },
    )
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.#fh.close().then(
      () => cb(err),
      (e: Error) => cb(err ?? e),
    )
  }
}

/**
 * The file end of a blob being written (Layout.putBlob): each batch of queued chunks goes out in
 * one writev, the file is fsynced before the stream finishes (so a rename after it never exposes
 * unwritten data after a crash), and the handle is closed however the stream ends. Being the
 * last holder of every chunk, it hands gzip output blocks back (returnOutBlock) once the file has
 * them. In place of fs.WriteStream, which gives no word per chunk.
 */
export class PooledFileWriter extends Writable {
  readonly #fh: FileHandle
  constructor(fh: FileHandle, highWaterMark: number) {
    super({ highWaterMark, decodeStrings: true })
    this.#fh = fh
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (e?: Error | null) => void): void {
    writeAll(
      this.#fh,
      chunks.map((c) => c.chunk),
    ).then(() => {
      for (const c of chunks) returnOutBlock(c.chunk)
      cb()
    }, cb)
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this._writev([{ chunk }], cb)
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.#fh.sync().then(() => cb(), cb)
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.#fh.close().then(
      () => cb(err),
      (e: Error) => cb(err ?? e),
    )
  }
}

/** writev until every byte is written (a write may take less than asked). */
async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let rest = bufs
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest)
    let n = bytesWritten
    if (n === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' })
    let i = 0
    while (i < rest.length && n >= rest[i]!.length) n -= rest[i++]!.length
    rest = rest.slice(i)
    if (n > 0) rest[0] = rest[0]!.subarray(n)
  }
}

/**
 * Write `body` into `dest` as pipe() does, with one addition: each chunk goes back to the pool
 * (returnBlock) once `dest` has written it, for a body of pool blocks (a PooledFileReader) that
 * nothing else holds; other buffers are left alone. Without `length`, `dest` ends when `body`
 * ends. With `length`, `dest` ends with its length-th byte, not after the read that finds the
 * end of the body (a client that has all it was promised may hang up at once), nothing past it
 * is sent (the body is destroyed), and a body that ends short destroys `dest` (its reader sees a
 * short body, never a wrong one). Errors and early closes are the caller's to handle.
 */
export function pipeReturningBlocks(body: Readable, dest: Writable, length?: number): void {
  let sent = 0
  body.on('data', (chunk: Buffer) => {
    if (length !== undefined && sent >= length) {
      body.destroy()
      return
    }
    const part = length !== undefined && chunk.length > length - sent ? chunk.subarray(0, length - sent) : chunk
    sent += part.length
    const more = dest.write(part, (err) => {
      if (!err) returnBlock(chunk)
    })
    if (sent === length) dest.end()
    else if (!more) body.pause()
  })
  dest.on('drain', () => body.resume())
  body.once('end', () => {
    if (length === undefined) dest.end()
    else if (sent < length) dest.destroy()
  })
}
