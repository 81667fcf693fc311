/**
 * Wrap a raw byte stream in the project's VerifyingStream, so the stream a source hands out
 * errors before it ends unless size and digest match (DESIGN.md: sources verify themselves).
 */
import { pipeline, type Readable } from 'node:stream'
import { VerifyingStream, type Expected } from '../../digest/verify.js'

export function verifiedRead(raw: Readable, expected: Expected): Readable {
  const v = new VerifyingStream(expected)
  // The callback form: an error on either side destroys both and surfaces on `v`.
  pipeline(raw, v, () => {})
  return v
}
