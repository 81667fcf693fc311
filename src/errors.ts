/**
 * Every error Lading raises on purpose is a LadingError with a stable `code`.
 * The CLI prints `lading: <message>` for these and exits 1 (2 for USAGE);
 * anything else is a bug and gets the stack with --debug.
 */
export type ErrorCode =
  | 'USAGE'
  | 'DIGEST_INVALID'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'SIZE_LIMIT'
  | 'BLOB_UNKNOWN'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_UNKNOWN'
  | 'TAG_INVALID'
  | 'INVALID_JSON'
  | 'INVALID_DOCUMENT'
  | 'INVALID_MANIFEST'
  | 'INVALID_INDEX'
  | 'INVALID_CONFIG'
  | 'INVALID_LAYOUT'
  | 'INVALID_REFERENCE'
  | 'UNSUPPORTED'
  | 'PLATFORM_NOT_FOUND'
  | 'LOCKED'
  | 'UNSAFE_PATH'
  | 'INVALID_TAR'
  | 'COMPRESSION_MISMATCH'
  | 'NOT_FOUND'
  | 'EXISTS'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'REGISTRY_ERROR'
  | 'NETWORK'
  | 'CONFLICT'
  | 'INVALID_DOCKERFILE'
  | 'BUILD_FAILED'

export class LadingError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'LadingError'
  }
}

/** Longest name quoted whole in a message; longer ones keep their head and tail. */
const MAX_QUOTED = 160

/**
 * A name for an error message, JSON-quoted (control characters escaped) and shortened: names come
 * from untrusted input (tar entries, archive members, tags, link targets), and a hostile 5000-
 * character name must not make a 15 KB error line. Every error that quotes such a name uses this.
 * Values from documents too: a number beyond double range is said so, not printed as null.
 */
export function quoteName(name: unknown): string {
  // JSON.parse reads 1e400 as Infinity, which JSON.stringify would print as null.
  if (typeof name === 'number' && !Number.isFinite(name)) return `${name < 0 ? '-' : ''}a number too large to represent`
  if (typeof name !== 'string') {
    const q = String(JSON.stringify(name))
    return q.length <= MAX_QUOTED ? q : `${q.slice(0, 100)}…${q.slice(-40)} (${q.length} characters)`
  }
  const q = JSON.stringify(name)
  if (q.length <= MAX_QUOTED) return q
  // Cut the raw name (not its escaped form, which a cut could leave half an escape of).
  const chars = [...name]
  return `${JSON.stringify(chars.slice(0, 100).join(''))}…${JSON.stringify(chars.slice(-40).join(''))} (${chars.length} characters)`
}

export function isLadingError(e: unknown, code?: ErrorCode): e is LadingError {
  return e instanceof LadingError && (code === undefined || e.code === code)
}

/** True for a Node.js system error with the given errno code (ENOENT, EEXIST, ...). */
export function isErrno(e: unknown, code: string): e is NodeJS.ErrnoException {
  return typeof e === 'object' && e !== null && (e as NodeJS.ErrnoException).code === code
}
