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

/**
 * How deep indexes may nest, counted as the number of indexes above a descriptor (index.json
 * itself not counted): a manifest under 8 nested indexes passes, under 9 it is refused.
 * image-spec image-index.md allows an index to list indexes and sets no bound; real images
 * nest one or two levels (a multi-platform index, sometimes under a vendor's index). Every walk
 * of an index (resolve, validate, gc, copy, stat, inspect, unpack) judges depth with this one
 * constant and reports it with indexDepthMessage(), so commands agree on what they refuse.
 */
export const MAX_INDEX_DEPTH = 8

/**
 * How many descriptors one walk (a copy plan, a gc mark) may visit, counting repeats. Walks
 * memoize each digest, so a legitimate image visits each entry once; the cap stops a hostile
 * index that lists millions of entries, or a walk that somehow is not memoized, with one error.
 */
export const MAX_DESCRIPTORS_VISITED = 100_000

/** The one wording of a depth refusal (also a validate Problem message). */
export function indexDepthMessage(): string {
  return `indexes nested more than ${MAX_INDEX_DEPTH} deep (Lading's limit)`
}

/**
 * Refuse a manifest or index found under more than MAX_INDEX_DEPTH indexes: `depth` is the
 * number of indexes above it; `where` names the document (a reference or a blob).
 */
export function checkIndexDepth(depth: number, where: string): void {
  if (depth > MAX_INDEX_DEPTH) throw new LadingError('INVALID_INDEX', `${where}: ${indexDepthMessage()}`)
}

/** Counts descriptors visited by one walk; past MAX_DESCRIPTORS_VISITED, one SIZE_LIMIT error. */
export class VisitBudget {
  #left: number
  readonly #what: string
  readonly #max: number
  constructor(what: string, max = MAX_DESCRIPTORS_VISITED) {
    this.#left = max
    this.#max = max
    this.#what = what
  }
  /** Count `n` more descriptors. */
  spend(n = 1): void {
    this.#left -= n
    if (this.#left < 0)
      throw new LadingError('SIZE_LIMIT', `${this.#what}: more than ${this.#max} descriptors to visit (Lading's limit; a hostile or broken index?)`)
  }
}
