/**
 * Registry error responses -> one LadingError line. distribution-spec §Error Codes: a 4xx body
 * MAY be anything, but if it is JSON it is `{"errors":[{"code","message","detail"}]}` with
 * codes from the spec's table. We keep the registry's code in the message (users search for
 * it) and map it onto Lading's stable codes.
 */
import { LadingError, type ErrorCode } from '../../errors.js'

const CODE_MAP: Record<string, ErrorCode> = {
  BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  BLOB_UPLOAD_INVALID: 'REGISTRY_ERROR',
  BLOB_UPLOAD_UNKNOWN: 'REGISTRY_ERROR',
  DIGEST_INVALID: 'DIGEST_MISMATCH',
  MANIFEST_BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  MANIFEST_INVALID: 'INVALID_MANIFEST',
  MANIFEST_UNKNOWN: 'MANIFEST_UNKNOWN',
  NAME_INVALID: 'INVALID_REFERENCE',
  NAME_UNKNOWN: 'NAME_UNKNOWN',
  SIZE_INVALID: 'SIZE_MISMATCH',
  UNAUTHORIZED: 'UNAUTHORIZED',
  DENIED: 'DENIED',
  UNSUPPORTED: 'UNSUPPORTED',
  TOOMANYREQUESTS: 'NETWORK',
}

export interface RegistryErrorEntry { code: string; message?: string; detail?: unknown }

/** Parse a registry error body; undefined when it is not the spec's JSON shape. */
export function parseErrorBody(body: Uint8Array): RegistryErrorEntry[] | undefined {
  if (body.length === 0) return undefined
  let v: unknown
  try { v = JSON.parse(Buffer.from(body).toString('utf8')) } catch { return undefined }
  if (typeof v !== 'object' || v === null || !Array.isArray((v as { errors?: unknown }).errors)) return undefined
  const out: RegistryErrorEntry[] = []
  for (const e of (v as { errors: unknown[] }).errors) {
    if (typeof e !== 'object' || e === null) continue
    const code = (e as { code?: unknown }).code
    const message = (e as { message?: unknown }).message
    if (typeof code !== 'string') continue
    out.push({ code, ...(typeof message === 'string' ? { message } : {}), detail: (e as { detail?: unknown }).detail })
  }
  return out.length ? out : undefined
}

/** Printable, single-line, bounded: registry text is untrusted and goes to a terminal. */
export function sanitize(s: string, max = 300): string {
  const t = s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim()
  return t.length > max ? `${t.slice(0, max)}…` : t
}

/**
 * Build the error for a failed response. `what` names the operation and object
 * (`docker://host/repo: GET manifest latest`).
 */
export function registryError(what: string, status: number, body: Uint8Array, opts: { basicCredentials?: boolean } = {}): LadingError {
  const entries = parseErrorBody(body)
  if (status === 401 && opts.basicCredentials) {
    return new LadingError('UNAUTHORIZED', `${what}: UNAUTHORIZED: wrong username or password`)
  }
  if (entries) {
    const first = entries[0]!
    const code = CODE_MAP[first.code] ?? statusCode(status)
    const text = entries.map((e) => `${sanitize(e.code, 40)}${e.message ? `: ${sanitize(e.message)}` : ''}`).join('; ')
    return new LadingError(code, `${what}: ${status} ${text}`)
  }
  const snippet = sanitize(Buffer.from(body.subarray(0, 200)).toString('utf8'), 120)
  return new LadingError(statusCode(status), `${what}: HTTP ${status}${snippet ? ` (${snippet})` : ''}`)
}

function statusCode(status: number): ErrorCode {
  if (status === 401) return 'UNAUTHORIZED'
  if (status === 403) return 'DENIED'
  if (status === 404) return 'NOT_FOUND'
  if (status === 409) return 'CONFLICT'
  if (status === 405) return 'UNSUPPORTED'
  if (status === 429 || status >= 500) return 'NETWORK'
  return 'REGISTRY_ERROR'
}
