/**
 * Layer compression: detection by magic bytes, decoding to plain tar, deterministic encoding.
 *
 * image-spec layer.md §gzip Media Types / §zstd Media Types: a `+gzip` layer is RFC 1952 and a
 * `+zstd` layer is RFC 8878; a plain `.tar` layer is uncompressed. The descriptor's media type says
 * what a blob should be; the bytes say what it is. We trust neither alone: decompress() peeks the
 * first bytes and refuses a disagreement (COMPRESSION_MISMATCH naming both), so a gzip blob that a
 * registry labelled `tar` is an error rather than garbage fed to the tar reader.
 *
 * Corrupt or truncated compressed data, and non-zero trailing garbage, are INVALID_TAR errors
 * naming the blob; none of them can hang (zlib and zstd consume input or fail). Decoders produce
 * output only as fast as it is read, so memory stays bounded whatever the compression ratio
 * (a decompression bomb is a slow stream, not an out-of-memory crash).
 */
import { Duplex, PassThrough, Readable, Transform, pipeline } from 'node:stream'
import zlib from 'node:zlib'
import { createRequire } from 'node:module'
import { LadingError } from '../errors.js'
import { ParallelGzip } from './gzip-parallel.js'
import { nativeGunzip } from './native-gunzip.js'

/** How a layer's tar is compressed (image-spec layer.md media types map onto these). */
export type Compression = 'none' | 'gzip' | 'zstd'

const GZIP_MAGIC = [0x1f, 0x8b] as const
/** RFC 8878 §3.1.1: frame magic 0xFD2FB528, little-endian. */
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const
/** Skippable frames (RFC 8878 §3.1.2): magic 0x184D2A5? little-endian; a zstd stream may start with one. */
function isZstdSkippable(h: Uint8Array): boolean {
  return h.length >= 4 && (h[0]! & 0xf0) === 0x50 && h[1] === 0x2a && h[2] === 0x4d && h[3] === 0x18
}
/** ustar magic at offset 257 (POSIX "ustar\0" or GNU "ustar "). */
const TAR_MAGIC_OFFSET = 257
const TAR_BLOCK = 512
/** How many bytes detection wants to see: a whole first tar header. */
export const DETECT_BYTES = TAR_BLOCK

/**
 * Compression of a stream from its first bytes (pass at least DETECT_BYTES when available).
 * 'none' for something that looks like tar (ustar magic at 257), an empty stream, or an all-zero
 * first block (an empty tar archive is just end-of-archive zero blocks). undefined if unknown.
 */
export function detectCompression(head: Uint8Array): Compression | undefined {
  if (head.length === 0) return 'none'
  if (head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) return 'gzip'
  if (head.length >= 4 && ZSTD_MAGIC.every((b, i) => head[i] === b)) return 'zstd'
  if (isZstdSkippable(head)) return 'zstd'
  if (head.length >= TAR_MAGIC_OFFSET + 5) {
    const m = Buffer.from(head.buffer, head.byteOffset + TAR_MAGIC_OFFSET, 5).toString('latin1')
    if (m === 'ustar') return 'none'
  }
  // An empty archive (only zero blocks), or a stream shorter than a block that is all zeros.
  const n = Math.min(head.length, TAR_BLOCK)
  let zero = true
  for (let i = 0; i < n; i++)
    if (head[i] !== 0) {
      zero = false
      break
    }
  if (zero && (n === TAR_BLOCK || n === head.length)) return 'none'
  return undefined
}

interface Peeked {
  head: Buffer
  ended: boolean
  /** Stop watching for errors (call once another consumer listens); returns an error seen meanwhile. */
  release(): Error | undefined
}

/**
 * Read up to `n` bytes from the front of `input` without losing them: resolves with the bytes
 * and whether the stream ended; if it has not ended, the bytes are put back (unshift) and the
 * stream is left paused. An error listener stays on until release(), so an error emitted before
 * the caller attaches its pipeline is neither uncaught nor lost.
 */
function peek(input: Readable, n: number): Promise<Peeked> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let len = 0
    let settled = false
    let lateError: Error | undefined
    const release = (): Error | undefined => {
      input.off('error', onError)
      return lateError
    }
    const stopReading = (): void => {
      input.off('data', onData)
      input.off('end', onEnd)
    }
    const onData = (c: Buffer | string): void => {
      const b = typeof c === 'string' ? Buffer.from(c) : c
      chunks.push(b)
      len += b.length
      if (len >= n) {
        input.pause()
        stopReading()
        const head = Buffer.concat(chunks, len)
        input.unshift(head)
        settled = true
        resolve({ head, ended: false, release })
      }
    }
    const onEnd = (): void => {
      stopReading()
      settled = true
      resolve({ head: Buffer.concat(chunks, len), ended: true, release })
    }
    const onError = (e: Error): void => {
      if (settled) {
        lateError ??= e
        return
      }
      stopReading()
      release()
      reject(e)
    }
    input.on('data', onData)
    input.on('end', onEnd)
    input.on('error', onError)
  })
}

type ZstdModule = typeof import('zstd-napi')
let zstdModule: ZstdModule | undefined
/**
 * zstd-napi is a CommonJS native addon; load it only when a zstd stream is actually met. It is an
 * optional dependency (its install falls back to a compiler when no prebuilt binary downloads, and
 * a library install must not need one): absent, zstd is one clear error, and gzip is unaffected.
 */
function requireZstd<T>(id: 'zstd-napi' | 'zstd-napi/binding'): T {
  try {
    return createRequire(import.meta.url)(id) as T
  } catch (e) {
    throw new LadingError(
      'UNSUPPORTED',
      `zstd needs the optional package zstd-napi, which is not installed or did not build (${(e as Error).message.split('\n')[0]}); npm install zstd-napi, or use Node >= 22.15 to read zstd layers`,
      { cause: e },
    )
  }
}
function zstdNapi(): ZstdModule {
  zstdModule ??= requireZstd<ZstdModule>('zstd-napi')
  return zstdModule
}

/** Node's own zstd (in zlib from Node 22.15/23.8) when this runtime has it; feature-detected. */
interface NativeZstd {
  createZstdDecompress?: (opts?: object) => Transform
  createZstdCompress?: (opts?: { params?: Record<number, number> }) => Transform
  constants: Record<string, number>
}
const nativeZstd = zlib as unknown as NativeZstd

/** zstd-napi's low-level streaming decoder (RFC 8878), from the addon's binding. */
interface ZstdBinding {
  DCtx: new () => { decompressStream(dst: Uint8Array, src: Uint8Array): [number, number, number] }
}
let zstdBinding: ZstdBinding | undefined
const ZSTD_OUT_CHUNK = 1024 * 1024

/**
 * Node's own zstd when the runtime has it (it runs on libuv's pool like gunzip); otherwise
 * zstd-napi's streaming decoder driven by an async generator, so output is produced only as the
 * reader pulls it (a "bomb" never piles up: at most the readable side's 16 chunks of 1 MiB).
 * It runs on the main thread: a worker thread did the same work no faster (about 250 ms for the
 * 84 MB Debian layer either way) and its own Node environment cost about 45 MB of memory, which
 * put a zstd unpack over the 150 MB budget.
 */
function zstdDecoder(): Duplex {
  if (typeof nativeZstd.createZstdDecompress === 'function') return nativeZstd.createZstdDecompress({ chunkSize: 256 * 1024 })
  return Duplex.from(decodeZstd)
}

async function* decodeZstd(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  zstdBinding ??= requireZstd<ZstdBinding>('zstd-napi/binding')
  const dctx = new zstdBinding.DCtx()
  let dst = Buffer.allocUnsafe(ZSTD_OUT_CHUNK)
  let filled = 0
  let inFrame = false
  for await (const chunk of source) {
    let src = chunk
    for (;;) {
      const room = dst.length - filled
      // ret: 0 when a frame is complete, else a hint of more input wanted (zstd_decompressStream).
      const [ret, produced, consumed] = dctx.decompressStream(dst.subarray(filled), src)
      filled += produced
      src = src.subarray(consumed)
      inFrame = ret !== 0
      if (filled === dst.length) {
        yield dst
        dst = Buffer.allocUnsafe(ZSTD_OUT_CHUNK)
        filled = 0
        continue
      }
      // Input used up and output not full: the decoder has given all it can for now.
      if (src.length === 0 && produced < room) break
    }
  }
  if (inFrame) throw new Error('stream ended in the middle of a zstd frame (truncated)')
  if (filled > 0) yield dst.subarray(0, filled)
}

/**
 * ISA-L's igzip on libuv's pool where the addon is built (io/native-gunzip.ts: 3-5x zlib's speed,
 * so an unpack waits on file creation, not on inflate), else Node's zlib (also on the pool).
 */
function gunzipDecoder(): Duplex {
  return nativeGunzip() ?? zlib.createGunzip({ chunkSize: 256 * 1024 })
}

function describe(name: string | undefined): string {
  return name ? `${name}: ` : ''
}

function wrapDecodeError(e: unknown, c: Compression, name: string | undefined): Error {
  if (e instanceof LadingError) return e
  const msg = e instanceof Error ? e.message : String(e)
  return new LadingError('INVALID_TAR', `${describe(name)}corrupt ${c} data: ${msg}`, { cause: e })
}

/**
 * Peek the first bytes of `input`, check them against `expected` (the descriptor's compression;
 * COMPRESSION_MISMATCH naming both if they disagree), and return a stream of plain tar bytes.
 * Errors of `input` (e.g. a VerifyingStream's digest mismatch) propagate to the returned stream.
 * Unknown leading bytes with no expectation are passed through as 'none' for the tar reader to judge.
 */
export async function decompress(input: Readable, expected?: Compression, name?: string): Promise<Readable> {
  const { head, ended, release } = await peek(input, DETECT_BYTES)
  const found = detectCompression(head)
  if (expected !== undefined && found !== expected) {
    // A plain tar without ustar magic (v7 tar) cannot be recognised; accept it when 'none' is expected.
    if (!(expected === 'none' && found === undefined)) {
      release()
      input.destroy()
      const what =
        found === undefined
          ? 'not recognised (neither gzip, zstd nor tar)'
          : found === 'none'
            ? head.length === 0
              ? 'none (empty)'
              : 'none (uncompressed tar)'
            : found
      throw new LadingError('COMPRESSION_MISMATCH', `${describe(name)}media type says ${expected} but the data is ${what}`)
    }
  }
  const c: Compression = found ?? 'none'
  const source: Readable = ended ? Readable.from(head.length > 0 ? [head] : [], { objectMode: false }) : input
  let out: Readable
  if (c === 'none') {
    if (ended) {
      release()
      return source
    }
    out = new PassThrough({ highWaterMark: 256 * 1024 })
    pipeline(source, out as PassThrough, () => {})
  } else {
    const decoder = c === 'gzip' ? gunzipDecoder() : zstdDecoder()
    out = new DecodeErrorMapper(c, name)
    pipeline(source, decoder, out as DecodeErrorMapper, () => {})
  }
  const early = release()
  if (early) out.destroy(early)
  return out
}

/** Passes bytes through; rewrites a decoder error reaching it into a LadingError naming the blob. */
class DecodeErrorMapper extends PassThrough {
  readonly #c: Compression
  readonly #name: string | undefined
  constructor(c: Compression, name: string | undefined) {
    super({ highWaterMark: 256 * 1024 })
    this.#c = c
    this.#name = name
  }
  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    cb(error ? wrapDecodeError(error, this.#c, this.#name) : error)
  }
}

/**
 * Deterministic encoder: the same bytes in with the same options give the same bytes out
 * (for a given Node/zlib/zstd build). gzip compresses blocks in parallel on libuv's pool
 * (see gzip-parallel.ts; default level DEFAULT_GZIP_LEVEL = 4); zstd uses one zstd stream at `level` (default 3) with no content-size
 * or dictionary-id fields so nothing but the data shapes the frame; none passes through.
 */
export function compress(input: Readable, c: Compression, opts: { level?: number; recycleInput?: boolean; recycleOutput?: boolean } = {}): Readable {
  let encoder: Transform
  switch (c) {
    case 'none':
      encoder = new PassThrough({ highWaterMark: 256 * 1024 })
      break
    case 'gzip':
      if (opts.level !== undefined && (!Number.isInteger(opts.level) || opts.level < 0 || opts.level > 9))
        throw new LadingError('USAGE', `gzip level must be an integer from 0 to 9, got ${opts.level}`)
      encoder = new ParallelGzip({
        ...(opts.level !== undefined ? { level: opts.level } : {}),
        ...(opts.recycleInput ? { recycleInput: true } : {}),
        ...(opts.recycleOutput ? { recycleOutput: true } : {}),
      })
      break
    case 'zstd':
      encoder = zstdEncoder(opts.level ?? 3)
      break
    default:
      throw new LadingError('UNSUPPORTED', `unknown compression ${JSON.stringify(c as string)}`)
  }
  pipeline(input, encoder, () => {})
  return encoder
}

function zstdEncoder(level: number): Transform {
  if (!Number.isInteger(level) || level < -7 || level > 22) throw new LadingError('USAGE', `zstd level must be an integer from -7 to 22, got ${level}`)
  // zstd-napi always (Node 20). A native zlib zstd would produce a different (equally valid) frame
  // layout, so encoding stays on zstd-napi for byte-stable output across runtimes.
  return new (zstdNapi().CompressStream)({ compressionLevel: level, checksumFlag: true, contentSizeFlag: false, dictIDFlag: false })
}

/** Compression named by a command-line word; USAGE error otherwise. */
export function parseCompression(s: string): Compression {
  if (s === 'gzip' || s === 'zstd' || s === 'none') return s
  throw new LadingError('USAGE', `unknown compression ${JSON.stringify(s)}: expected gzip, zstd or none`)
}

/** Exposed for tests and benchmarks: a gzip stream made with one zlib stream on one thread. */
export function gzipSingleThread(input: Readable, level = 6): Readable {
  const z = zlib.createGzip({ level })
  pipeline(input, z, () => {})
  return z
}
