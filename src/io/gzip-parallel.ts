/**
 * A deterministic gzip encoder that uses every core libuv gives it, with one of two engines.
 *
 * libdeflate (the default where native/ was built, see native-gzip.ts): the input is cut into
 * fixed 1 MiB blocks and each becomes one complete gzip member, compressed on libuv's thread pool;
 * the layer is the members one after another. RFC 1952 §2.2 defines a gzip file as a series of
 * members, and Go's compress/gzip (multistream by default, so containerd, skopeo, umoci), GNU
 * gzip and tar, and Node's zlib read every member. libdeflate has no preset dictionary, so a
 * block cannot refer back into the previous one; on the Debian minbase rootfs that costs 0.1% of
 * size, while libdeflate at level 4 writes 1.7% less than zlib at level 4 with 27% less CPU.
 *
 * zlib (the fallback, and level 0): the input is cut into fixed-size blocks (BLOCK_SIZE, independent of the number of threads, so
 * the output is the same bytes on any machine with the same zlib). Each block is deflated on
 * libuv's thread pool with `zlib.deflateRaw`, primed with the previous 32 KiB of input as a preset
 * dictionary (so matches reach back across block boundaries and the ratio stays close to a single
 * stream), and ended with Z_SYNC_FLUSH, which leaves the raw deflate output byte-aligned and
 * without a final-block bit. Concatenated, the blocks form one valid deflate stream (RFC 1951
 * §3.2.3: blocks are a sequence; only the last has BFINAL set); we end it with an empty final
 * block, wrap it in ONE gzip member (RFC 1952 §2.3: fixed 10-byte header with MTIME 0, no name,
 * fixed OS byte) and a trailer of CRC-32 and ISIZE. Any gzip reader (GNU gzip, Go's
 * compress/gzip, Node's zlib) sees an ordinary single-member file.
 *
 * Memory is bounded: at most MAX_IN_FLIGHT blocks are being deflated or waiting to be emitted;
 * beyond that the transform applies backpressure to its writer.
 *
 * Determinism caveat: bytes are identical for the same input, level and zlib build. A different
 * Node release may ship a different zlib whose encoder makes other (equally valid) choices.
 */
import { Transform, type TransformCallback } from 'node:stream'
import zlib from 'node:zlib'
import { returnBlock, takeOutBlock } from './block-pool.js'
import { nativeGzip, type NativeGzip } from './native-gzip.js'

/** Input bytes per independently compressed block. Fixed: changing it changes the output bytes. */
export const GZIP_BLOCK_SIZE = 1024 * 1024
/** Deflate's window: the most a match can reach back, so all of a dictionary that can be used. */
const DICTIONARY_SIZE = 32 * 1024
/**
 * Default level 4. On the Debian minbase rootfs tar (204 MB, 1 MiB blocks, one core) libdeflate
 * at level 4 writes 93.6 MB in 1.76 s: as small as zlib at its default level 6 (93.7 MB, 3.5 s)
 * and smaller than umoci's layers (95.1 MB). The zlib fallback at level 4 costs 63% of its level
 * 6's CPU for output 1.6% larger. Pass a level for anything else.
 */
export const DEFAULT_GZIP_LEVEL = 4
/** Blocks in flight (compressing or waiting for their turn to be emitted). Threads are libuv's (default 4). */
const MAX_IN_FLIGHT = 4

/** RFC 1952 §2.3: ID1 ID2 CM=8 (deflate) FLG=0 MTIME=0 XFL=0 OS=255 (unknown, so no host leaks in). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff])
/** An empty final block with fixed Huffman codes: BFINAL=1, BTYPE=01, end-of-block (RFC 1951 §3.2.6). */
const FINAL_EMPTY_BLOCK = Buffer.from([0x03, 0x00])

export type GzipEngine = 'libdeflate' | 'zlib'

export interface ParallelGzipOptions {
  /** Level 0-9 (libdeflate reads 1-9 as zlib does; 0 stores, with zlib); default DEFAULT_GZIP_LEVEL. */
  level?: number
  /** Default: libdeflate when it is built and the level is not 0. */
  engine?: GzipEngine
  /**
   * The input's chunks are this encoder's alone: blocks from io/block-pool are handed back once
   * compressed (libdeflate engine). Only for a stream nothing else reads (see block-pool.ts).
   */
  recycleInput?: boolean
  /**
   * Compress into output blocks of io/block-pool (libdeflate engine), for a stream whose only
   * reader is a blob writer that hands each block back once written (Layout.putBlob).
   */
  recycleOutput?: boolean
}

/** The engine a ParallelGzip at `level` will use by default. */
export function defaultGzipEngine(level = DEFAULT_GZIP_LEVEL): GzipEngine {
  return level > 0 && nativeGzip() ? 'libdeflate' : 'zlib'
}

function deflateBlock(data: Buffer, dictionary: Buffer | undefined, level: number): Promise<Buffer> {
  const opts: zlib.ZlibOptions = { level, finishFlush: zlib.constants.Z_SYNC_FLUSH, chunkSize: Math.max(64 * 1024, data.length + (data.length >>> 3) + 1024) }
  if (dictionary) opts.dictionary = dictionary
  return new Promise((resolve, reject) => {
    zlib.deflateRaw(data, opts, (err, out) => (err ? reject(err) : resolve(out)))
  })
}

/** A Transform from plain bytes to one gzip member, compressing blocks in parallel. */
export class ParallelGzip extends Transform {
  readonly #level: number
  /** Set when each block becomes its own gzip member (libdeflate); then no header, CRC or trailer here. */
  readonly #native: NativeGzip | undefined
  readonly #recycle: boolean
  readonly #recycleOutput: boolean
  #dispatched = 0
  /** Input gathered for the block being filled. */
  #pending: Buffer[] = []
  #pendingBytes = 0
  /** Last DICTIONARY_SIZE bytes of the previous block's input. */
  #dictionary: Buffer | undefined
  /** Blocks dispatched, in input order; emitted strictly in that order. */
  readonly #queue: Array<Promise<Buffer>> = []
  #crc = 0
  #isize = 0
  #headerWritten = false

  constructor(opts: ParallelGzipOptions = {}) {
    super({ highWaterMark: GZIP_BLOCK_SIZE, readableHighWaterMark: GZIP_BLOCK_SIZE })
    const level = opts.level ?? DEFAULT_GZIP_LEVEL
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`gzip level must be an integer 0-9, got ${level}`)
    this.#level = level
    this.#recycle = opts.recycleInput ?? false
    this.#recycleOutput = opts.recycleOutput ?? false
    const engine = opts.engine ?? defaultGzipEngine(level)
    if (engine === 'libdeflate') {
      this.#native = nativeGzip()
      if (!this.#native) throw new Error('the libdeflate gzip engine is not built (install libdeflate-dev, then npm rebuild)')
      if (level === 0) throw new RangeError('gzip level 0 (stored) uses the zlib engine')
      this.#headerWritten = true
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.#headerWritten) {
      this.push(GZIP_HEADER)
      this.#headerWritten = true
    }
    if (!this.#native) {
      this.#crc = zlib.crc32(chunk, this.#crc)
      this.#isize = (this.#isize + chunk.length) >>> 0
    }
    let off = 0
    while (off < chunk.length) {
      const take = Math.min(GZIP_BLOCK_SIZE - this.#pendingBytes, chunk.length - off)
      this.#pending.push(off === 0 && take === chunk.length ? chunk : chunk.subarray(off, off + take))
      this.#pendingBytes += take
      off += take
      if (this.#pendingBytes === GZIP_BLOCK_SIZE) this.#dispatch()
    }
    this.#drain(MAX_IN_FLIGHT - 1).then(() => cb(), cb)
  }

  override _flush(cb: TransformCallback): void {
    if (!this.#headerWritten) {
      this.push(GZIP_HEADER)
      this.#headerWritten = true
    }
    // Empty input still makes a valid gzip file: one member of nothing.
    if (this.#pendingBytes > 0 || (this.#native && this.#dispatched === 0)) this.#dispatch()
    this.#drain(0).then(() => {
      if (this.#native) {
        cb()
        return
      }
      const trailer = Buffer.alloc(8)
      trailer.writeUInt32LE(this.#crc >>> 0, 0)
      trailer.writeUInt32LE(this.#isize, 4)
      this.push(FINAL_EMPTY_BLOCK)
      this.push(trailer)
      cb()
    }, cb)
  }

  #dispatch(): void {
    const block = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes)
    this.#pending = []
    this.#pendingBytes = 0
    this.#dispatched++
    if (this.#native) {
      let p: Promise<Buffer>
      // (Blocks are never longer than GZIP_BLOCK_SIZE; the check states what an output block has room for.)
      if (this.#recycleOutput && block.length <= GZIP_BLOCK_SIZE) {
        const out = takeOutBlock()
        p = this.#native.gzipMemberInto(block, this.#level, out).then((n) => out.subarray(0, n))
      } else {
        p = this.#native.gzipMember(block, this.#level)
      }
      // The native job holds the block until it settles; then nothing else does (recycleInput).
      if (this.#recycle)
        p.then(
          () => returnBlock(block),
          () => {},
        )
      p.catch(() => {})
      this.#queue.push(p)
      return
    }
    const p = deflateBlock(block, this.#dictionary, this.#level)
    // Avoid an unhandled rejection while the promise waits its turn; #drain observes the error.
    p.catch(() => {})
    this.#queue.push(p)
    this.#dictionary =
      block.length >= DICTIONARY_SIZE
        ? block.subarray(block.length - DICTIONARY_SIZE)
        : Buffer.concat([this.#dictionary ?? Buffer.alloc(0), block]).subarray(-DICTIONARY_SIZE)
  }

  /** Emit finished blocks in order until at most `keep` remain in flight. */
  async #drain(keep: number): Promise<void> {
    while (this.#queue.length > keep) {
      const out = await this.#queue.shift()!
      this.push(out)
    }
  }
}
