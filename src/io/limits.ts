/**
 * Size caps applied *before* parsing untrusted input. image-spec does not bound document
 * size; registries commonly cap manifests at 4 MiB (distribution-spec §Pushing Manifests
 * allows a registry to refuse large ones), so that is our default for any JSON document.
 */
import type { Readable } from 'node:stream'
import { LadingError } from '../errors.js'

export const DEFAULT_MAX_DOCUMENT_BYTES = 4 * 1024 * 1024

/** Read a whole stream into memory, failing with SIZE_LIMIT as soon as it passes `max` bytes. */
export async function readAllLimited(stream: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  let n = 0
  try {
    for await (const chunk of stream) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
      n += b.length
      if (n > max) throw new LadingError('SIZE_LIMIT', `${what}: larger than the limit of ${max} bytes`)
      chunks.push(b)
    }
  } catch (e) {
    stream.destroy()
    throw e
  }
  return Buffer.concat(chunks, n)
}
