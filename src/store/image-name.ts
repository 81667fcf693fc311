/**
 * How an image in an OCI layout is named on a command line: umoci's `--image DIR[:TAG]` and the
 * body of skopeo's `oci:DIR[:TAG]` reference follow one rule, kept here (light to import: `lading
 * ls` and friends parse --image without loading any transport code).
 */
import { parseDigest, type Digest } from '../digest/digest.js'
import { quoteName, type LadingError } from '../errors.js'
import { isValidTag } from '../spec/ref-name.js'

const DIGEST_SUFFIX = /@([a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$/

/** Split `PATH[:REST]` at the first colon, as containers/image does. */
export function splitPath(body: string): [string, string | undefined] {
  const i = body.indexOf(':')
  return i < 0 ? [body, undefined] : [body.slice(0, i), body.slice(i + 1)]
}

function digestOr(s: string, fail: (why: string) => LadingError): Digest {
  try {
    return parseDigest(s)
  } catch (e) {
    throw fail((e as Error).message)
  }
}

/**
 * An image in a layout, `PATH[:TAG]` or `PATH[:]@DIGEST`: skopeo's `oci:` body and umoci's
 * `--image` argument, one rule for both. The path ends at the FIRST colon, as containers/image's
 * oci transport (SplitPathAndImage) and umoci's --image (strings.Index) both split it, so a tag
 * may contain '/' and ':' as image-spec annotations.md allows for ref.name (`DIR:a/b:c` is tag
 * `a/b:c`), and a path containing ':' cannot be named. The tag must be a ref.name. `fail` makes
 * the caller's error from the reason.
 */
export function parseLayoutImage(body: string, allowDigest: boolean, fail: (why: string) => LadingError): { path: string; tag?: string; digest?: Digest } {
  let rest = body
  let digest: Digest | undefined
  const m = DIGEST_SUFFIX.exec(rest)
  if (allowDigest && m) {
    digest = digestOr(m[1]!, fail)
    rest = rest.slice(0, m.index)
    if (rest.endsWith(':')) rest = rest.slice(0, -1)
  }
  const [p, tag] = splitPath(rest)
  if (p === '') throw fail('empty path')
  if (tag !== undefined && digest !== undefined) throw fail('both a tag and a digest')
  if (tag !== undefined) {
    if (tag === '') throw fail("empty tag after ':'")
    if (!isValidTag(tag)) throw fail(`invalid tag ${quoteName(tag)} (image-layout.md ref.name grammar)`)
  }
  return { path: p, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) }
}
