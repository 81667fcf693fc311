/**
 * The one rule for "is this document a referrer, of what, and how is it listed": used by the
 * layout's referrer scan (store/referrers.ts, and so gc), the oci/oci-archive sources'
 * listReferrers, the registry client's referrers-tag fallback, and the layout destination.
 *
 * - subject: image-spec manifest.md §subject and image-index.md §subject: a descriptor; the
 *   document refers to its `digest`, which must be a valid digest (descriptor.md §digest) or the
 *   document is not a referrer at all.
 * - artifactType: distribution-spec §Listing Referrers: the document's `artifactType` if present
 *   and not empty; else, for an image manifest, its config descriptor's `mediaType`; for an index
 *   it is omitted.
 * - annotations: distribution-spec §Listing Referrers: "MUST include annotations from the image
 *   manifest or index"; annotations.md: values are strings, so others are dropped, and an empty
 *   map is omitted.
 */
import { isDigest, type Digest } from '../digest/digest.js'
import { isIndexMediaType } from './media-types.js'
import { sniffManifestMediaType } from './parse.js'
import type { Descriptor } from './types.js'

export interface Referrer {
  /** The digest the document's `subject` names. */
  subject: Digest
  /** The document as a referrers list gives it (distribution-spec §Listing Referrers). */
  descriptor: Descriptor
}

type Doc = Record<string, unknown>

/** The digest `doc.subject` names, if `doc` has a subject with a valid digest. */
export function subjectOf(doc: unknown): Digest | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined
  const subject = (doc as Doc).subject
  if (typeof subject !== 'object' || subject === null) return undefined
  const digest = (subject as Doc).digest
  return isDigest(digest) ? digest : undefined
}

/** The artifactType a referrers list gives a document of `mediaType` (see the top of this file). */
export function referrerArtifactType(doc: Doc, mediaType: string): string | undefined {
  if (typeof doc.artifactType === 'string' && doc.artifactType !== '') return doc.artifactType
  if (isIndexMediaType(mediaType)) return undefined
  const config = doc.config
  const configType = typeof config === 'object' && config !== null ? (config as Doc).mediaType : undefined
  return typeof configType === 'string' && configType !== '' ? configType : undefined
}

function stringAnnotations(doc: Doc): Record<string, string> | undefined {
  const a = doc.annotations
  if (typeof a !== 'object' || a === null || Array.isArray(a)) return undefined
  const entries = Object.entries(a as Doc).filter((e): e is [string, string] => typeof e[1] === 'string')
  return entries.length > 0 ? Object.fromEntries(entries) : undefined
}

/**
 * `bytes` as a referrer, or undefined when they are not a JSON manifest or index with a subject
 * (corrupt, binary, or an ordinary image). `desc.mediaType`, when the caller knows it (an index
 * entry, a response), is used; otherwise it is sniffed from the document (spec/parse.ts).
 */
export function referrerOf(bytes: Uint8Array, desc: { digest: Digest; size: number; mediaType?: string }): Referrer | undefined {
  // Cheap rejection of layers and other binary blobs before decoding (a scan reads every small blob).
  let i = 0
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++
  if (bytes[i] !== 0x7b /* { */) return undefined
  let doc: Doc
  let mediaType: string
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8')) as Doc
    const subject = subjectOf(doc)
    if (subject === undefined) return undefined
    mediaType = desc.mediaType ?? sniffManifestMediaType(bytes, `blob ${desc.digest}`).mediaType
    const descriptor: Descriptor = { mediaType, digest: desc.digest, size: desc.size }
    const artifactType = referrerArtifactType(doc, mediaType)
    if (artifactType !== undefined) descriptor.artifactType = artifactType
    const annotations = stringAnnotations(doc)
    if (annotations !== undefined) descriptor.annotations = annotations
    return { subject, descriptor }
  } catch {
    return undefined
  }
}
