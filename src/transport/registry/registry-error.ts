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

export interface RegistryErrorEntry {
  code: string
  message?: string
  detail?: unknown
}

/** Parse a registry error body; undefined when it is not the spec's JSON shape. */
export function parseErrorBody(body: Uint8Array): RegistryErrorEntry[] | undefined {
  if (body.length === 0) return undefined
  let v: unknown
  try {
    v = JSON.parse(Buffer.from(body).toString('utf8'))
  } catch {
    return undefined
  }
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

export interface ErrorContext {
  /** Basic credentials were sent: a 401 means they are wrong. */
  basicCredentials?: boolean
  /** true: no credentials were found for this registry; false: some were used; unset: unknown. */
  anonymous?: boolean
  /** The registry's name (`host:port`), for the `lading login` hint. */
  registry?: string
  /** How many times the request went (transient statuses are retried before they are reported). */
  attempts?: number
}

/**
 * Build the error for a failed response. `what` names the operation and object
 * (`docker://host/repo: GET manifest latest`). A registry's JSON error body is quoted; a bare
 * status (a HEAD has no body, proxies send HTML) is said in words with what to do about it,
 * never as a lone "HTTP 401".
 */
export function registryError(what: string, status: number, body: Uint8Array, opts: ErrorContext = {}): LadingError {
  const entries = parseErrorBody(body)
  if (status === 401 && opts.basicCredentials) {
    return new LadingError('UNAUTHORIZED', `${what}: UNAUTHORIZED: wrong username or password`)
  }
  const hint = statusHint(status, opts)
  if (entries) {
    const first = entries[0]!
    const code = CODE_MAP[first.code] ?? statusCode(status)
    const text = entries.map((e) => `${sanitize(e.code, 40)}${e.message ? `: ${sanitize(e.message)}` : ''}`).join('; ')
    // The registry's words first (users search for them), then ours only where they add a remedy.
    const remedy =
      (status === 401 || status === 403) && opts.anonymous ? ` (${loginHint(opts.registry)})` : status === 429 || status >= 500 ? retriedNote(opts) : ''
    return new LadingError(code, `${what}: ${status} ${text}${remedy}`)
  }
  const snippet = sanitize(Buffer.from(body.subarray(0, 200)).toString('utf8'), 120)
  return new LadingError(statusCode(status), `${what}: ${hint}${snippet ? ` (${snippet})` : ''}`)
}

function loginHint(registry: string | undefined): string {
  return `log in with \`lading login ${registry ?? 'REGISTRY'}\`, or give credentials with --creds (copy: --src-creds or --dest-creds)`
}

function retriedNote(opts: ErrorContext): string {
  return opts.attempts && opts.attempts > 1 ? ` (${opts.attempts} attempts)` : ''
}

/** A bare status in words, with the remedy when there is one (RFC 9110 §15 meanings, as registries use them). */
function statusHint(status: number, opts: ErrorContext): string {
  switch (status) {
    case 400:
      return 'HTTP 400 bad request: the registry refused the request as malformed'
    case 401:
      return opts.anonymous === false
        ? 'HTTP 401 unauthorized: the registry refused the credentials for this request'
        : `HTTP 401 unauthorized: credentials are needed: ${loginHint(opts.registry)}`
    case 403:
      return opts.anonymous
        ? `HTTP 403 denied: the registry refuses this without credentials: ${loginHint(opts.registry)}`
        : 'HTTP 403 denied: these credentials have no permission for this repository or operation'
    case 404:
      return 'HTTP 404 not found: no such repository, or no such tag, digest or blob in it'
    case 405:
      return 'HTTP 405 method not allowed: the registry does not offer this operation (read-only, or deletes disabled)'
    case 409:
      return 'HTTP 409 conflict: the registry refused the change as conflicting with what it holds'
    case 413:
      return 'HTTP 413 payload too large: the registry (or a proxy before it) refuses a body this large'
    case 414:
      return 'HTTP 414 URI too long: the registry (or a proxy before it) refuses the request line'
    case 416:
      return 'HTTP 416 range not satisfiable: the registry cannot resume this download'
    case 429:
      return `HTTP 429 too many requests: the registry is rate-limiting this client; try again later${retriedNote(opts)}`
    default:
      if (status >= 500) return `HTTP ${status}: the registry (or a proxy before it) failed with a server error${retriedNote(opts)}`
      if (status >= 300 && status < 400) return `HTTP ${status} redirect, not followed for this request`
      return `HTTP ${status}: unexpected status`
  }
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
