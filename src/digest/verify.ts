/**
 * The one verifying stream. Every blob Lading reads from anywhere passes through it, so
 * callers never have to remember to verify: the stream errors *before it ends* if the size
 * is exceeded (as soon as a byte too many arrives) or if the final size or digest differ.
 * Consumers that see 'end' have seen verified bytes.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { LadingError } from '../errors.js'
import { digestAlgorithm, newHash, type Algorithm, type Digest } from './digest.js'

export interface Expected {
  digest?: Digest | undefined
  size?: number | undefined
  /** Used in error messages: what this blob is (a descriptor, a file path). */
  name?: string | undefined
}

export class VerifyingStream extends Transform {
  readonly #expected: Expected
  readonly #hash
  readonly #alg: Algorithm
  #size = 0
  #result: { digest: Digest; size: number } | undefined

  constructor(expected: Expected, alg?: Algorithm) {
    super()
    this.#expected = expected
    this.#alg = expected.digest ? digestAlgorithm(expected.digest) : (alg ?? 'sha256')
    this.#hash = newHash(this.#alg)
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#size += chunk.length
    const want = this.#expected.size
    if (want !== undefined && this.#size > want) {
      cb(new LadingError('SIZE_MISMATCH', `${this.#label()}: size mismatch: expected ${want} bytes, got more than ${want}`))
      return
    }
    this.#hash.update(chunk)
    cb(null, chunk)
  }

  override _flush(cb: TransformCallback): void {
    const digest = `${this.#alg}:${this.#hash.digest('hex')}` as Digest
    const want = this.#expected
    if (want.size !== undefined && this.#size !== want.size) {
      cb(new LadingError('SIZE_MISMATCH', `${this.#label()}: size mismatch: expected ${want.size} bytes, got ${this.#size}`))
      return
    }
    if (want.digest !== undefined && digest !== want.digest) {
      cb(new LadingError('DIGEST_MISMATCH', `${this.#label()}: digest mismatch: expected ${want.digest}, got ${digest}`))
      return
    }
    this.#result = { digest, size: this.#size }
    cb()
  }

  /** The digest and size actually seen; available once the stream has ended. */
  get result(): { digest: Digest; size: number } | undefined { return this.#result }

  #label(): string { return this.#expected.name ?? this.#expected.digest ?? 'blob' }
}

/** Check bytes in memory against an expectation (same errors as the stream). */
export function verifyBytes(data: Uint8Array, expected: Expected): Digest {
  const alg = expected.digest ? digestAlgorithm(expected.digest) : 'sha256'
  const label = expected.name ?? expected.digest ?? 'blob'
  if (expected.size !== undefined && data.length !== expected.size) {
    throw new LadingError('SIZE_MISMATCH', `${label}: size mismatch: expected ${expected.size} bytes, got ${data.length}`)
  }
  const d = `${alg}:${newHash(alg).update(data).digest('hex')}` as Digest
  if (expected.digest !== undefined && d !== expected.digest) {
    throw new LadingError('DIGEST_MISMATCH', `${label}: digest mismatch: expected ${expected.digest}, got ${d}`)
  }
  return d
}
