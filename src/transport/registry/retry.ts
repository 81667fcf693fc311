/**
 * Retry policy for registry traffic: connection resets, 5xx and 429 are transient; everything
 * else (4xx, digest mismatches) is not. Delays grow exponentially with full jitter and are
 * capped, and a Retry-After header is honoured up to the cap (so tests and users are never
 * stuck for minutes on a registry's say-so).
 */
import { setTimeout as sleep } from 'node:timers/promises'

export interface RetryOptions {
  /** Total attempts including the first (default 5). 1 disables retries. */
  attempts?: number
  /** First backoff delay in ms (default 200). */
  baseDelayMs?: number
  /** Upper bound of any single delay, Retry-After included (default 10000). */
  maxDelayMs?: number
}

export interface RetryPolicy {
  attempts: number
  baseDelayMs: number
  maxDelayMs: number
}

export function retryPolicy(o: RetryOptions | undefined): RetryPolicy {
  const attempts = Math.max(1, Math.floor(o?.attempts ?? 5))
  const baseDelayMs = Math.max(0, o?.baseDelayMs ?? 200)
  const maxDelayMs = Math.max(baseDelayMs, o?.maxDelayMs ?? 10_000)
  return { attempts, baseDelayMs, maxDelayMs }
}

/** Delay before retry number `attempt` (1-based): random in [d/2, d], d = base * 2^(attempt-1), capped. */
export function backoffDelay(p: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(p.maxDelayMs, Math.max(0, retryAfterMs))
  const d = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.max(0, attempt - 1))
  return d / 2 + Math.random() * (d / 2)
}

/** RFC 9110 §10.2.3 Retry-After: delay-seconds or an HTTP-date. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  const s = Array.isArray(v) ? v[0] : v
  if (!s) return undefined
  if (/^\s*\d+\s*$/.test(s)) return Number(s) * 1000
  const t = Date.parse(s)
  return Number.isNaN(t) ? undefined : Math.max(0, t - now)
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
])

/** A network-level failure worth another attempt (the socket error may be wrapped in `cause`). */
export function isRetryableError(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x && depth < 4; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as { code?: unknown }).code
    if (typeof code === 'string' && RETRYABLE_CODES.has(code)) return true
    if (x instanceof Error && /other side closed|socket hang up|aborted/i.test(x.message)) return true
  }
  return false
}

export { sleep }
