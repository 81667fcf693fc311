/**
 * Referrers in an OCI layout: manifests and indexes whose `subject` names a given digest
 * (image-spec manifest.md §subject, image-index.md §subject). A layout has no referrers
 * index, so the relationship is found from the referrer side by reading every blob small
 * enough to be a document. gc uses the same scan to keep referrers of reachable images.
 *
 * Descriptors are returned in the form of distribution-spec §Listing Referrers, by the one
 * referrer rule of spec/referrer.ts.
 */
import type { Digest } from '../digest/digest.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../io/limits.js'
import { referrerOf, type Referrer } from '../spec/referrer.js'
import type { Descriptor } from '../spec/types.js'
import type { BlobStore } from './blob-store.js'

/** A stored document with a subject (the rule is spec/referrer.ts). */
export type ReferrerCandidate = Referrer

/** Every stored document that has a `subject`, except those in `skip`. Corrupt or non-JSON blobs are ignored. */
export async function scanReferrers(blobs: BlobStore, skip?: Set<string>): Promise<ReferrerCandidate[]> {
  const out: ReferrerCandidate[] = []
  for await (const blob of blobs.list()) {
    if (skip?.has(blob.digest) || blob.size > DEFAULT_MAX_DOCUMENT_BYTES || blob.size < 2) continue
    const found = await readReferrer(blobs, blob.digest, blob.size)
    if (found) out.push(found)
  }
  return out
}

/** The referrers of `subject`, optionally only those of one artifactType. */
export async function listReferrers(blobs: BlobStore, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
  return (await scanReferrers(blobs))
    .filter((c) => c.subject === subject && (artifactType === undefined || c.descriptor.artifactType === artifactType))
    .map((c) => c.descriptor)
}

/** The referrer form of one stored document, when it has a subject (else undefined). */
export async function readReferrer(blobs: BlobStore, digest: Digest, size: number): Promise<ReferrerCandidate | undefined> {
  let bytes: Buffer
  try {
    bytes = await blobs.read({ digest, size })
  } catch {
    return undefined // corrupt or vanished: not a referrer we can honour
  }
  return referrerOf(bytes, { digest, size })
}
