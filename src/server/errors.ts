/**
 * The errors a registry answers with: distribution-spec §Error Codes, as the JSON body
 * `{"errors":[{"code","message","detail"}]}` with the status the spec's endpoint table gives.
 * Every failure the server sends goes through `toHttpError`, so a client always gets one spec
 * error, never a stack trace.
 */
import { LadingError } from '../errors.js'

/** distribution-spec §Error Codes (code-1 .. code-14), plus Docker's RANGE_INVALID for 416. */
export type RegistryErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID'

export class HttpError extends Error {
  readonly status: number
  readonly code: RegistryErrorCode
  readonly headers: Record<string, string>
  readonly detail: unknown
  constructor(status: number, code: RegistryErrorCode, message: string, opts: { headers?: Record<string, string>; detail?: unknown } = {}) {
    super(message)
    this.status = status
    this.code = code
    this.headers = opts.headers ?? {}
    this.detail = opts.detail
  }

  body(): string {
    const e: Record<string, unknown> = { code: this.code, message: this.message }
    if (this.detail !== undefined) e.detail = this.detail
    return JSON.stringify({ errors: [e] })
  }
}

/**
 * A thrown value as the spec error to send. `context` picks the code for the store's generic
 * ones (a BLOB_UNKNOWN while storing a manifest is MANIFEST_BLOB_UNKNOWN; an invalid document
 * in a manifest PUT is MANIFEST_INVALID). Anything not ours is a 500 without its message.
 */
export function toHttpError(e: unknown, context: 'manifest' | 'blob' | 'upload' | 'other' = 'other'): HttpError {
  if (e instanceof HttpError) return e
  if (!(e instanceof LadingError)) return new HttpError(500, 'UNSUPPORTED', 'internal server error')
  const m = e.message
  switch (e.code) {
    case 'DIGEST_INVALID':
    case 'DIGEST_MISMATCH':
      return new HttpError(400, 'DIGEST_INVALID', m)
    case 'SIZE_MISMATCH':
      return new HttpError(400, context === 'manifest' ? 'MANIFEST_INVALID' : 'SIZE_INVALID', m)
    case 'SIZE_LIMIT':
      return new HttpError(413, context === 'manifest' ? 'MANIFEST_INVALID' : 'SIZE_INVALID', m)
    case 'BLOB_UNKNOWN':
      return context === 'manifest' ? new HttpError(400, 'MANIFEST_BLOB_UNKNOWN', m) : new HttpError(404, 'BLOB_UNKNOWN', m)
    case 'MANIFEST_UNKNOWN':
      return new HttpError(404, 'MANIFEST_UNKNOWN', m)
    case 'NAME_UNKNOWN':
      return new HttpError(404, 'NAME_UNKNOWN', m)
    case 'TAG_INVALID':
      return new HttpError(400, 'MANIFEST_INVALID', m)
    case 'INVALID_JSON':
    case 'INVALID_DOCUMENT':
    case 'INVALID_MANIFEST':
    case 'INVALID_INDEX':
    case 'INVALID_CONFIG':
      return new HttpError(400, 'MANIFEST_INVALID', m)
    case 'UNSUPPORTED':
      return new HttpError(context === 'manifest' ? 400 : 415, context === 'manifest' ? 'MANIFEST_INVALID' : 'UNSUPPORTED', m)
    case 'NOT_FOUND':
      return context === 'upload'
        ? new HttpError(404, 'BLOB_UPLOAD_UNKNOWN', m)
        : new HttpError(404, context === 'manifest' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN', m)
    case 'UNAUTHORIZED':
      return new HttpError(401, 'UNAUTHORIZED', m)
    case 'DENIED':
      return new HttpError(403, 'DENIED', m)
    case 'LOCKED':
      return new HttpError(429, 'TOOMANYREQUESTS', m, { headers: { 'Retry-After': '1' } })
    default:
      return new HttpError(500, 'UNSUPPORTED', `internal server error (${e.code})`)
  }
}
