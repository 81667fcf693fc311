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

export function isLadingError(e: unknown, code?: ErrorCode): e is LadingError {
  return e instanceof LadingError && (code === undefined || e.code === code)
}

/** True for a Node.js system error with the given errno code (ENOENT, EEXIST, ...). */
export function isErrno(e: unknown, code: string): e is NodeJS.ErrnoException {
  return typeof e === 'object' && e !== null && (e as NodeJS.ErrnoException).code === code
}
