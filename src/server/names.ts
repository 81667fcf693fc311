/**
 * Which repository names, tags and references the server accepts, checked on the raw request
 * path before anything touches the file system.
 *
 * - Names: distribution-spec §Pulling manifests grammar (src/transport/docker-reference.ts, the
 *   one implementation), which already excludes `..`, `.`, empty components, absolute paths,
 *   upper case and every percent-encoded character. On top of it, a component may not be one
 *   of the names an OCI layout keeps in its own directory (`blobs`, `index.json`,
 *   `oci-layout`): repository `a/b` lives inside repository `a`'s directory, and `a/blobs`
 *   would be repository `a`'s blob store.
 * - Tags: the distribution tag grammar (src/spec/ref-name.ts).
 */
import { isDigest, type Digest } from '../digest/digest.js'
import { isValidTag } from '../spec/ref-name.js'
import { BLOBS_DIR, INDEX_FILE, LAYOUT_FILE } from '../store/layout.js'
import { isValidRepository } from '../transport/docker-reference.js'
import { HttpError } from './errors.js'

const RESERVED = new Set([BLOBS_DIR, INDEX_FILE, LAYOUT_FILE])

/** Why `name` is refused, or undefined when it is a repository name the server stores. */
export function repositoryNameProblem(name: string): string | undefined {
  if (!isValidRepository(name))
    return `invalid repository name ${JSON.stringify(name.slice(0, 300))}: distribution-spec requires [a-z0-9]+ components joined by '.', '_', '__' or '-', separated by '/'`
  const bad = name.split('/').find((c) => RESERVED.has(c))
  if (bad !== undefined)
    return `invalid repository name ${JSON.stringify(name)}: the component ${JSON.stringify(bad)} is reserved (an OCI layout keeps its own ${bad} there)`
  return undefined
}

export function checkRepositoryName(name: string): string {
  const why = repositoryNameProblem(name)
  if (why !== undefined) throw new HttpError(400, 'NAME_INVALID', why)
  return name
}

/** A manifest reference: a digest or a distribution-spec tag; 400 otherwise. */
export function parseReference(ref: string): { digest: Digest } | { tag: string } {
  if (ref.includes(':')) {
    if (!isDigest(ref)) throw new HttpError(400, 'DIGEST_INVALID', `invalid digest ${JSON.stringify(ref.slice(0, 200))}`)
    return { digest: ref }
  }
  if (!isValidTag(ref, { distribution: true }))
    throw new HttpError(
      400,
      'MANIFEST_INVALID',
      `invalid tag ${JSON.stringify(ref.slice(0, 200))}: a tag is 1-128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'`,
    )
  return { tag: ref }
}

/** A digest from a path or query; DIGEST_INVALID (400) otherwise. */
export function parseDigestParam(s: string | null | undefined, what = 'digest'): Digest {
  if (s === null || s === undefined || s === '') throw new HttpError(400, 'DIGEST_INVALID', `${what} is missing`)
  if (!isDigest(s))
    throw new HttpError(400, 'DIGEST_INVALID', `invalid ${what} ${JSON.stringify(s.slice(0, 200))}: expected sha256:<64 hex> or sha512:<128 hex>`)
  return s
}
