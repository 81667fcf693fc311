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
  /** Resolves with [consumed, produced, inMember]; see native/inflate.c. */
  inflate(state: object, input: Buffer, inOffset: number, out: Buffer, outOffset: number): Promise<[number, number, 0 | 1]>
}

const addon = optionalAddon<InflateAddon>('lading_inflate', ['createInflater', 'inflate'], { env: 'LADING_GUNZIP', value: 'zlib' })

/** Why the native decoder is not in use (for `--debug` output and tests), or undefined if it is. */
export function nativeGunzipUnavailableReason(): string | undefined {
  return addon.unavailableReason()
}

/** Output is pushed in blocks of this size (the last one shorter). */
const OUT_BLOCK = 1024 * 1024
/**
 * At most this many bytes of output wait for the reader (plus the one block being filled): the
 * decoder starts its next call only while the reader keeps up, so a decompression bomb costs
 * time, not memory. Four blocks let the pool decode ahead while the main thread writes files.
 */
const READ_AHEAD = 4 * OUT_BLOCK
const EMPTY = Buffer.alloc(0)

/** A streaming gunzip on the native decoder, or undefined where it is not available. */
export function nativeGunzip(): Duplex | undefined {
  const a = addon.get()
  return a ? new NativeGunzip(a) : undefined
}

/**
 * One inflate call at a time runs on the pool, writing into the current output block; a full
 * block is pushed and the next call waits until the readable side wants more. A written chunk is
 * acknowledged once it is all consumed, so the writer (the blob's file) is held back in turn.
 */
class NativeGunzip extends Duplex {
  readonly #addon: InflateAddon
  readonly #state: object
  #out = Buffer.allocUnsafe(OUT_BLOCK)
  #filled = 0
  #inMember = false
  /** Resolves a wait for the reader (set while the decoder waits in #feed). */
  #wake: (() => void) | undefined

  constructor(a: InflateAddon) {
    super({ readableHighWaterMark: READ_AHEAD, writableHighWaterMark: OUT_BLOCK })
    this.#addon = a
    this.#state = a.createInflater()
  }

  /** Decode all of `input` (EMPTY at the end, to drain what the state still holds). */
  async #feed(input: Buffer): Promise<void> {
    let off = 0
    for (;;) {
      const [consumed, produced, inMember] = await this.#addon.inflate(this.#state, input, off, this.#out, this.#filled)
      if (this.destroyed) return
      off += consumed
      this.#filled += produced
      this.#inMember = inMember === 1
      if (this.#filled < this.#out.length) {
        // Not full: the input is used up (the only other reason a call returns).
        return
      }
      const full = this.#out
      this.#out = Buffer.allocUnsafe(OUT_BLOCK)
      this.#filled = 0
      if (!this.push(full)) await new Promise<void>((resolve) => (this.#wake = resolve))
      if (this.destroyed) return
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#feed(chunk).then(() => cb(), cb)
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.#feed(EMPTY).then(() => {
      if (this.destroyed) return cb()
      if (this.#inMember) return cb(new Error('unexpected end of file'))
      if (this.#filled > 0) this.push(this.#out.subarray(0, this.#filled))
      this.push(null)
      cb()
    }, cb)
  }

  override _read(): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    // A decoder waiting for the reader returns (it checks `destroyed`); a call on the pool
    // finishes on its own and its result is dropped.
    this._read()
    cb(e)
  }
}
