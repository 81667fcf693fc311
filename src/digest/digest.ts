/**
 * Digests per image-spec descriptor.md §Digests:
 *   digest    ::= algorithm ":" encoded
 *   algorithm ::= algorithm-component (algorithm-separator algorithm-component)*
 *   algorithm-component ::= [a-z0-9]+ ; algorithm-separator ::= [+._-]
 *   encoded   ::= [a-zA-Z0-9=_-]+
 * Registered algorithms (sha256, sha512) additionally require lowercase hex of exact length
 * (§sha256: /[a-f0-9]{64}/, §sha512: /[a-f0-9]{128}/). Unregistered algorithms are
 * syntactically valid but cannot be verified, so Lading refuses them with a clear error.
 */
import { createHash, type Hash } from 'node:crypto'
import { LadingError } from '../errors.js'

export type Algorithm = 'sha256' | 'sha512'
/** A validated digest string, e.g. `sha256:e3b0...`. */
export type Digest = string & { readonly __digest: unique symbol }

const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/
const HEX_LENGTH: Record<Algorithm, number> = { sha256: 64, sha512: 128 }

export function isAlgorithm(a: string): a is Algorithm {
  return a === 'sha256' || a === 'sha512'
}

/** Parse and validate a digest string; throws DIGEST_INVALID naming what is wrong. */
export function parseDigest(s: unknown): Digest {
  if (typeof s !== 'string') throw new LadingError('DIGEST_INVALID', `digest must be a string, got ${typeof s}`)
  if (!GRAMMAR.test(s)) throw new LadingError('DIGEST_INVALID', `invalid digest ${JSON.stringify(s)}: not of the form algorithm:encoded`)
  const i = s.indexOf(':')
  const alg = s.slice(0, i)
  const hex = s.slice(i + 1)
  if (!isAlgorithm(alg))
    throw new LadingError(
      'DIGEST_INVALID',
      `invalid digest ${JSON.stringify(s)}: unsupported algorithm ${JSON.stringify(alg)} (sha256 and sha512 are supported)`,
    )
  if (!/^[a-f0-9]+$/.test(hex)) throw new LadingError('DIGEST_INVALID', `invalid digest ${JSON.stringify(s)}: ${alg} requires lowercase hex`)
  if (hex.length !== HEX_LENGTH[alg])
    throw new LadingError('DIGEST_INVALID', `invalid digest ${JSON.stringify(s)}: ${alg} requires ${HEX_LENGTH[alg]} hex characters, got ${hex.length}`)
  return s as Digest
}

export function isDigest(s: unknown): s is Digest {
  try {
    parseDigest(s)
    return true
  } catch {
    return false
  }
}

export function digestAlgorithm(d: Digest): Algorithm {
  return d.slice(0, d.indexOf(':')) as Algorithm
}
export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1)
}
export function formatDigest(alg: Algorithm, hex: string): Digest {
  return parseDigest(`${alg}:${hex}`)
}

export function newHash(alg: Algorithm): Hash {
  return createHash(alg)
}

/** Digest of bytes in memory (small documents only: manifests, configs, indexes). */
export function digestOf(data: Uint8Array | string, alg: Algorithm = 'sha256'): Digest {
  return `${alg}:${createHash(alg).update(data).digest('hex')}` as Digest
}

/** Short form for display: `sha256:0123456789ab`. */
export function shortDigest(d: string, n = 12): string {
  const i = d.indexOf(':')
  return i < 0 ? d.slice(0, n) : d.slice(0, i + 1 + n)
}
