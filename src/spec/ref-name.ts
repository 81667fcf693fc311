/**
 * Tag grammar. In an OCI layout a tag is the `org.opencontainers.image.ref.name` annotation of
 * a descriptor in index.json (image-layout.md §index.json); its grammar is annotations.md
 * §Pre-Defined Annotation Keys:
 *   ref       ::= component ("/" component)*
 *   component ::= alphanum (separator alphanum)*
 *   alphanum  ::= [A-Za-z0-9]+
 *   separator ::= [-._:@+] | "--"
 * A registry tag is narrower (distribution-spec §Pulling manifests):
 *   [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 */
import { LadingError, quoteName } from '../errors.js'

const COMPONENT = '[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*'
const REF_NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`)
const DISTRIBUTION_TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/

export interface TagGrammar {
  /** Also require the distribution-spec tag grammar (for tags pushed to a registry). */
  distribution?: boolean
}

/** Is `s` a valid ref.name (and, when asked, a valid registry tag)? */
export function isValidTag(s: string, grammar: TagGrammar = {}): boolean {
  if (typeof s !== 'string') return false
  if (grammar.distribution) return DISTRIBUTION_TAG_RE.test(s)
  return REF_NAME_RE.test(s)
}

/** Why `s` is not a valid tag, or undefined when it is. */
export function tagProblem(s: unknown, grammar: TagGrammar = {}): string | undefined {
  if (typeof s !== 'string') return `tag must be a string, got ${typeof s}`
  if (s === '') return 'tag is empty'
  if (grammar.distribution) {
    return DISTRIBUTION_TAG_RE.test(s)
      ? undefined
      : `invalid tag ${quoteName(s)}: a registry tag is 1-128 characters of [A-Za-z0-9_.-] not starting with '.' or '-'`
  }
  return REF_NAME_RE.test(s)
    ? undefined
    : `invalid tag ${quoteName(s)}: a ref.name is components of [A-Za-z0-9] joined by one of - . _ : @ + or "--", separated by '/' (image-spec annotations.md)`
}

/** Return `s` if it is a valid tag; otherwise throw TAG_INVALID saying why. */
export function assertValidTag(s: string, grammar: TagGrammar = {}): string {
  const why = tagProblem(s, grammar)
  if (why !== undefined) throw new LadingError('TAG_INVALID', why)
  return s
}
