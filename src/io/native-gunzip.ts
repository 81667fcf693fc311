/**
 * The optional native gzip decoder (native/inflate.c: ISA-L's igzip on libuv's pool), as a stream.
 * It is built by `npm install` when Debian's libisal-dev is present (scripts/build-native.sh);
 * without it, or with LADING_GUNZIP=zlib in the environment, decompress() (io/compression.ts)
 * uses Node's zlib instead. Both read the same streams (multi-member, zero padding after the last
 * member) and refuse the same corruptions; decompress() turns either's error into INVALID_TAR.
 */
import { Duplex } from 'node:stream'
import { optionalAddon } from './native-addon.js'

interface InflateAddon {
  createInflater(): object
  pushInput(state: object, input: Buffer): void
  /** Resolves with [consumed, produced, inMember, decodedChunks]; see native/inflate.c. */
  inflate(state: object, out: Buffer, outOffset: number): Promise<[number, number, 0 | 1, number]>
}

const addon = optionalAddon<InflateAddon>('lading_inflate', ['createInflater', 'pushInput', 'inflate'], { env: 'LADING_GUNZIP', value: 'zlib' })

/** Why the native decoder is not in use (for `--debug` output and tests), or undefined if it is. */
export function nativeGunzipUnavailableReason(): string | undefined {
  return addon.unavailableReason()
}

/**
 * Sizes measured on the Debian minbase layer (unpack to tmpfs, peak RSS): 2 MiB calls with 4 MiB
 * read ahead were no faster than 1 MiB with 1 MiB (0.66 s) and took 15 MB more; 256 KiB calls
 * saved 10 MB more but took 10% longer.
 *
 * Each inflate call writes up to CALL_OUT bytes, into a fresh buffer or into the rest of one an
 * earlier call left at least MIN_ROOM of (so that short outputs share buffers instead of each
 * pinning a whole one), and what it wrote is pushed as one chunk.
 */
const CALL_OUT = 1024 * 1024
const MIN_ROOM = 256 * 1024
/**
 * Calls queued on the pool at once. A call starts only after the main thread has seen the one
 * before it finish, so with one call the decoder sat idle whenever the main thread was busy
 * creating files; with two, the next is already waiting its turn (Debian minbase layer: `lading
 * run`'s "layer applied" about 645 -> 590 ms, unpack about 3% faster). A waiting call holds a
 * pool thread, so no more than two.
 */
const MAX_CALLS = 2
/**
 * At most this many bytes of output wait for the reader (plus the calls in flight): calls are
 * started only while the reader keeps up, so a decompression bomb costs time, not memory.
 */
const READ_AHEAD = 1024 * 1024
/** What the writer may buffer while a written chunk is being decoded. */
const WRITE_BUFFER = 1024 * 1024

/** What a call returned (or its error), with the output region it was given. */
interface CallResult {
  r: [consumed: number, produced: number, inMember: 0 | 1, decodedChunks: number] | Error
  buf: Buffer
  off: number
  room: number
}

/** A streaming gunzip on the native decoder, or undefined where it is not available. */
export function nativeGunzip(): Duplex | undefined {
  const a = addon.get()
  return a ? new NativeGunzip(a) : undefined
}

/**
 * A written chunk goes to the addon's input queue and is acknowledged once calls have decoded all
 * of it, as Node's zlib does: a writer may reuse a chunk once its write is done (pipeReturningBlocks
 * hands pool blocks back then), and an earlier acknowledgement let a queued chunk change under the
 * decoder. Calls decode from that queue into output buffers and their output is pushed in order.
 * Calls are started while there is input (or the stream is ending and not yet drained) and the
 * reader wants more.
 */
class NativeGunzip extends Duplex {
  readonly #addon: InflateAddon
  readonly #state: object
  #calls = 0
  #queuedBytes = 0
  #pushedChunks = 0
  #decodedChunks = 0
  /** The write waiting for its chunk to be decoded (one at a time, as Writable calls _write). */
  #pendingWrite: (() => void) | undefined
  #finalCb: ((e?: Error | null) => void) | undefined
  #wantMore = true
  /** The last call returned with room left and nothing was queued: the decoder has all it can. */
  #drained = false
  #done = false
  #inMember = false
  #spare: { buf: Buffer; used: number } | undefined
  #callSeq = 0
  #resultSeq = 0
  readonly #early = new Map<number, CallResult>()

  constructor(a: InflateAddon) {
    super({ readableHighWaterMark: READ_AHEAD, writableHighWaterMark: WRITE_BUFFER })
    this.#addon = a
    this.#state = a.createInflater()
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (chunk.length > 0) {
      this.#addon.pushInput(this.#state, chunk)
      this.#pushedChunks++
      this.#queuedBytes += chunk.length
      this.#drained = false
    }
    if (this.#decodedChunks < this.#pushedChunks) this.#pendingWrite = cb
    else cb()
    this.#pump()
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.#finalCb = cb
    this.#pump()
  }

  override _read(): void {
    this.#wantMore = true
    this.#pump()
  }

  #pump(): void {
    const ending = this.#finalCb !== undefined
    while (!this.destroyed && !this.#done && this.#calls < MAX_CALLS && this.#wantMore) {
      if (this.#queuedBytes === 0) {
        if (!ending || this.#calls > 0) return
        if (this.#drained) return this.#finish()
      }
      this.#call()
    }
  }

  #call(): void {
    let buf: Buffer
    let off = 0
    if (this.#spare) {
      ;({ buf, used: off } = this.#spare)
      this.#spare = undefined
    } else {
      buf = Buffer.allocUnsafe(CALL_OUT)
    }
    const room = buf.length - off
    this.#calls++
    const seq = this.#callSeq++
    // Calls decode in call order, but a pool thread may report before the one ahead of it does
    // (and a call after a failed one fails too): results and errors are taken in call order.
    const settle = (r: CallResult['r']): void => {
      this.#early.set(seq, { r, buf, off, room })
      for (let next; (next = this.#early.get(this.#resultSeq)) !== undefined;) {
        this.#early.delete(this.#resultSeq++)
        this.#result(next)
      }
    }
    this.#addon.inflate(this.#state, buf, off).then(settle, settle)
  }

  #result({ r, buf, off, room }: CallResult): void {
    this.#calls--
    if (this.destroyed) return
    if (r instanceof Error) return void this.destroy(r)
    const [consumed, produced, inMember, decodedChunks] = r
    this.#queuedBytes -= consumed
    this.#decodedChunks = Math.max(this.#decodedChunks, decodedChunks)
    // Results arrive in call order, so this is the state after all input so far.
    this.#inMember = inMember === 1
    this.#drained = produced < room && this.#queuedBytes === 0
    if (room - produced >= MIN_ROOM && !this.#spare) this.#spare = { buf, used: off + produced }
    if (produced > 0 && !this.push(buf.subarray(off, off + produced))) this.#wantMore = false
    const write = this.#pendingWrite
    if (write && this.#decodedChunks === this.#pushedChunks) {
      this.#pendingWrite = undefined
      write()
    }
    this.#pump()
  }

  #finish(): void {
    this.#done = true
    const cb = this.#finalCb!
    if (this.#inMember) return cb(new Error('unexpected end of file'))
    this.push(null)
    cb()
  }
}
