/**
 * The one verifying stream. Every blob Lading reads from anywhere passes through it, so
 * callers never have to remember to verify: the stream errors *before it ends* if the size
 * is exceeded (as soon as a byte too many arrives) or if the final size or digest differ.
 * Consumers that see 'end' have seen verified bytes.
 */
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream'
import { LadingError } from '../errors.js'
import { digestAlgorithm, newHash, type Algorithm, type Digest } from './digest.js'

export interface Expected {
  digest?: Digest | undefined
  size?: number | undefined
  /** Used in error messages: what this blob is (a descriptor, a file path). */
  name?: string | undefined
}

/**
 * Attestations: which streams will error before they end unless their bytes hash to a digest.
 * A VerifyingStream with an expected digest attests itself; a pass-through stage that does not
 * change bytes (a progress counter) carries the attestation on with `carryAttestation`. A later
 * VerifyingStream for the same digest whose input is attested then only counts bytes instead of
 * hashing them a second time: a copy from a registry into a layout hashes each blob once, not
 * twice. The guarantee is unchanged: on a mismatch the attested stream errors before its end,
 * so nothing downstream ever sees an 'end' for bad bytes.
 */
const attested = new WeakMap<object, Digest>()

/** The digest `stream` is attested to, if any. */
export function attestationOf(stream: object): Digest | undefined {
  return attested.get(stream)
}

/** Let `to` carry `from`'s attestation; only for stages that pass bytes through unchanged. */
export function carryAttestation(from: object, to: object): void {
  const d = attested.get(from)
  if (d !== undefined) attested.set(to, d)
}

export class VerifyingStream extends Transform {
  readonly #expected: Expected
  readonly #hash
  readonly #alg: Algorithm
  #size = 0
  #result: { digest: Digest; size: number } | undefined
  /** Set when the input is attested to the expected digest: count bytes, do not hash again. */
  #trusted = false

  /**
   * @param input the stream that will be piped in, when known: if it is attested to
   *   `expected.digest`, the bytes are counted (size is still checked) but not hashed again.
   */
  constructor(expected: Expected, alg?: Algorithm, input?: object) {
    super()
    this.#expected = expected
    this.#alg = expected.digest ? digestAlgorithm(expected.digest) : (alg ?? 'sha256')
    this.#hash = newHash(this.#alg)
    if (expected.digest !== undefined) {
      this.#trusted = input !== undefined && attested.get(input) === expected.digest
      attested.set(this, expected.digest)
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#size += chunk.length
    const want = this.#expected.size
    if (want !== undefined && this.#size > want) {
      cb(new LadingError('SIZE_MISMATCH', `${this.#label()}: size mismatch: expected ${want} bytes, got more than ${want}`))
      return
    }
    if (!this.#trusted) this.#hash.update(chunk)
    cb(null, chunk)
  }

  override _flush(cb: TransformCallback): void {
    // Trusted: the attested input has already checked these bytes against expected.digest and
    // would have errored before ending (so before this flush) on a mismatch.
    const digest = this.#trusted ? this.#expected.digest! : (`${this.#alg}:${this.#hash.digest('hex')}` as Digest)
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
  get result(): { digest: Digest; size: number } | undefined {
    return this.#result
  }

  #label(): string {
    return this.#expected.name ?? this.#expected.digest ?? 'blob'
  }
}

/**
 * `input` piped through a new VerifyingStream for `expected`: the one way to hand out a verified
 * stream (sources' getBlob, the layout's blobs, diff_id checks). The returned stream errors before
 * it ends unless size and digest match; an error on either side destroys both and surfaces on the
 * returned stream; a reader that destroys it early destroys `input` too (closing its file or
 * connection). An input attested to `expected.digest` is counted, not hashed again.
 */
export function verifiedStream(input: Readable, expected: Expected, alg?: Algorithm): VerifyingStream {
  const v = new VerifyingStream(expected, alg, input)
  pipeline(input, v, () => {
    /* the error, if any, is v's */
  })
  return v
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
