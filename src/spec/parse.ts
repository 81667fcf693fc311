/**
 * Strict parsers: untrusted bytes in, typed documents out, or one LadingError.
 * Each parser runs the listing validator of validate.ts and throws on the first problem with
 * the message `${source}: ${pointer}: ${why}` (plus "(+N more problems)"), so callers that
 * want every problem use the check* functions instead. The returned objects are the parsed
 * JSON itself: unknown fields are kept (manifest.md: implementations MUST ignore unknown
 * properties), and nothing is re-serialised.
 */
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../io/limits.js'
import { LadingError, type ErrorCode } from '../errors.js'
import { MediaType } from './media-types.js'
import type { Descriptor, ImageConfig, Index, Manifest, OciLayoutFile } from './types.js'
import { checkConfig, checkDescriptor, checkIndex, checkLayoutFile, checkManifest, formatProblem, type Problem } from './validate.js'

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Codes that describe the failure better than "invalid document" and are kept as they are. */
const SPECIFIC: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['UNSUPPORTED', 'SIZE_LIMIT', 'INVALID_JSON'])

/** Throw the first of `problems` (if any) as one LadingError with `code`. */
export function throwProblems(problems: Problem[], code: ErrorCode): void {
  const first = problems[0]
  if (!first) return
  const more = problems.length > 1 ? ` (+${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : ''
  throw new LadingError(SPECIFIC.has(first.code) ? first.code : code, formatProblem(first) + more)
}

/**
 * Decode and parse a JSON document, refusing it *before* parsing when it exceeds `maxBytes`
 * (io/limits.ts: 4 MiB by default) and when it is not valid UTF-8 (RFC 8259 §8.1).
 */
export function parseJson(bytes: Uint8Array, source: string, maxBytes: number = DEFAULT_MAX_DOCUMENT_BYTES): unknown {
  if (bytes.length > maxBytes) {
    throw new LadingError('SIZE_LIMIT', `${source}: /: document is ${bytes.length} bytes, larger than the limit of ${maxBytes} bytes`)
  }
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch (e) {
    throw new LadingError('INVALID_JSON', `${source}: /: not valid UTF-8`, { cause: e })
  }
  try {
    return JSON.parse(text) as unknown
  } catch (e) {
    throw new LadingError('INVALID_JSON', `${source}: /: not valid JSON: ${(e as Error).message}`, { cause: e })
  }
}

/** A descriptor standing alone (descriptor.md), e.g. from a file or a command line. */
export function parseDescriptor(value: unknown, source: string, pointer = ''): Descriptor {
  throwProblems(checkDescriptor(value, source, pointer), 'INVALID_DOCUMENT')
  return value as Descriptor
}

/**
 * An image manifest: OCI (manifest.md) or Docker v2 schema 2. `expectedMediaType` is the media
 * type of the descriptor or response that led here; the document's own field must agree.
 */
export function parseManifest(bytes: Uint8Array, source: string, expectedMediaType?: string): Manifest {
  const v = parseJson(bytes, source)
  throwProblems(checkManifest(v, source, expectedMediaType), 'INVALID_MANIFEST')
  return v as Manifest
}

/** An image index (image-index.md) or Docker manifest list. */
export function parseIndex(bytes: Uint8Array, source: string, expectedMediaType?: string): Index {
  const v = parseJson(bytes, source)
  throwProblems(checkIndex(v, source, expectedMediaType), 'INVALID_INDEX')
  return v as Index
}

/** An image config (config.md), OCI or Docker (application/vnd.docker.container.image.v1+json). */
export function parseConfig(bytes: Uint8Array, source: string): ImageConfig {
  const v = parseJson(bytes, source)
  throwProblems(checkConfig(v, source), 'INVALID_CONFIG')
  return v as ImageConfig
}

/** The `oci-layout` file (image-layout.md §oci-layout file); imageLayoutVersion must be "1.0.0". */
export function parseLayoutFile(bytes: Uint8Array, source: string): OciLayoutFile {
  let v: unknown
  try {
    v = parseJson(bytes, source)
  } catch (e) {
    // A layout marker that is not JSON makes the directory not a layout at all.
    if (e instanceof LadingError && e.code === 'INVALID_JSON') throw new LadingError('INVALID_LAYOUT', e.message, { cause: e })
    throw e
  }
  throwProblems(checkLayoutFile(v, source), 'INVALID_LAYOUT')
  return v as OciLayoutFile
}

/**
 * The media type of a manifest or index document: its `mediaType` field when present, else
 * inferred from its shape (`manifests` -> OCI index; `config`/`layers` -> OCI manifest), as
 * image-spec allows the field to be absent. Schema 1 throws UNSUPPORTED.
 */
export function manifestMediaType(bytes: Uint8Array, source: string): string {
  return sniffManifestMediaType(bytes, source).mediaType
}

/**
 * The one manifest media-type sniffer: the document's own non-empty `mediaType` (`declared`),
 * else its shape: `manifests` is an index (image-index.md), `config` or `layers` a manifest
 * (manifest.md). Docker schema 1 is UNSUPPORTED; anything else INVALID_DOCUMENT (or
 * INVALID_JSON / SIZE_LIMIT from parseJson). Only the type is guessed here; the strict parsers
 * check the document against it.
 */
export function sniffManifestMediaType(bytes: Uint8Array, source: string): { mediaType: string; declared: boolean } {
  const v = parseJson(bytes, source)
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new LadingError('INVALID_DOCUMENT', `${source}: /: a manifest or index must be a JSON object`)
  }
  const o = v as Record<string, unknown>
  if (o.schemaVersion === 1 || o.mediaType === MediaType.DockerManifestV1 || o.mediaType === MediaType.DockerManifestV1Signed) {
    throw new LadingError('UNSUPPORTED', `${source}: /schemaVersion: Docker image manifest schema 1 is not supported`)
  }
  if (typeof o.mediaType === 'string' && o.mediaType !== '') return { mediaType: o.mediaType, declared: true }
  if ('manifests' in o) return { mediaType: MediaType.OciIndex, declared: false }
  if ('config' in o || 'layers' in o) return { mediaType: MediaType.OciManifest, declared: false }
  throw new LadingError('INVALID_DOCUMENT', `${source}: /mediaType: no mediaType and the shape is neither a manifest (config, layers) nor an index (manifests)`)
}
