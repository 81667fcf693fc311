/**
 * Referrers in an OCI layout: manifests and indexes whose `subject` names a given digest
 * (image-spec manifest.md §subject, image-index.md §subject). A layout has no referrers
 * index, so the relationship is found from the referrer side by reading every blob small
 * enough to be a document. gc uses the same scan to keep referrers of reachable images.
 *
 * Descriptors are returned in the form of distribution-spec §Listing Referrers: media type,
 * digest, size, annotations, and artifactType (the document's, else for a manifest its config
 * media type; omitted for an index without one).
 */
import { isDigest, type Digest } from '../digest/digest.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../io/limits.js'
import { isIndexMediaType } from '../spec/media-types.js'
import { manifestMediaType } from '../spec/parse.js'
import type { Descriptor } from '../spec/types.js'
import type { Layout } from './layout.js'

export interface ReferrerCandidate {
  /** The referrer, as a descriptor (distribution-spec §Listing Referrers form). */
  descriptor: Descriptor
  /** The digest its `subject` names. */
  subject: Digest
}

/** Every stored document that has a `subject`, except those in `skip`. Corrupt or non-JSON blobs are ignored. */
export async function scanReferrers(layout: Layout, skip?: Set<string>): Promise<ReferrerCandidate[]> {
  const out: ReferrerCandidate[] = []
  for await (const blob of layout.listBlobs()) {
    if (skip?.has(blob.digest) || blob.size > DEFAULT_MAX_DOCUMENT_BYTES || blob.size < 2) continue
    const found = await referrerOf(layout, blob.digest, blob.size)
    if (found) out.push(found)
  }
  return out
}

/** The referrers of `subject`, optionally only those of one artifactType. */
export async function listReferrers(layout: Layout, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
  return (await scanReferrers(layout))
    .filter((c) => c.subject === subject && (artifactType === undefined || c.descriptor.artifactType === artifactType))
    .map((c) => c.descriptor)
}

/** The referrer form of one stored document, when it has a subject (else undefined). */
export async function referrerOf(layout: Layout, digest: Digest, size: number): Promise<ReferrerCandidate | undefined> {
  let bytes: Buffer
  try {
    bytes = await layout.readBlob({ digest, size })
  } catch {
    return undefined // corrupt or vanished: not a referrer we can honour
  }
  // Cheap rejection of layers and other binary blobs before JSON.parse.
  let i = 0
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++
  if (bytes[i] !== 0x7b /* { */) return undefined
  let doc: Record<string, unknown>
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'))
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
    doc = v as Record<string, unknown>
  } catch {
    return undefined
  }
  const subject = (doc.subject as { digest?: unknown } | undefined)?.digest
  if (!isDigest(subject)) return undefined
  let mediaType: string
  try {
    mediaType = manifestMediaType(bytes, `blob ${digest}`)
  } catch {
    return undefined
  }
  const descriptor: Descriptor = { mediaType, digest, size }
  const configType = (doc.config as { mediaType?: unknown } | undefined)?.mediaType
  const artifactType = typeof doc.artifactType === 'string' && doc.artifactType !== '' ? doc.artifactType
    : !isIndexMediaType(mediaType) && typeof configType === 'string' ? configType : undefined
  if (artifactType !== undefined) descriptor.artifactType = artifactType
  if (doc.annotations && typeof doc.annotations === 'object' && !Array.isArray(doc.annotations)) {
    const a = Object.entries(doc.annotations as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string')
    if (a.length > 0) descriptor.annotations = Object.fromEntries(a)
  }
  return { descriptor, subject }
}
