/**
 * The registry flags every registry command shares (skopeo's spelling): --tls-verify[=BOOL],
 * --cert-dir DIR, --creds USER[:PASS], --authfile FILE, turned into RegistryOptions. Pure: the
 * commands read argv, this only interprets values.
 */
import { LadingError } from '../../errors.js'
import { parseCredsOption } from '../auth/credentials.js'
import type { RegistryOptions } from './client.js'

export interface RegistryFlagValues {
  tlsVerify?: string | boolean | undefined
  certDir?: string | undefined
  creds?: string | undefined
  authfile?: string | undefined
}

/** `--tls-verify`, `--tls-verify=true|false` (commander gives true for the bare flag). */
export function parseBoolFlag(v: string | boolean | undefined, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt
  if (typeof v === 'boolean') return v
  if (/^(true|1|yes)$/i.test(v)) return true
  if (/^(false|0|no)$/i.test(v)) return false
  throw new LadingError('USAGE', `${name}: expected true or false, got ${JSON.stringify(v)}`)
}

/** The environment variable that sets the registry inactivity timeout, in seconds (RegistryOptions.timeoutMs). */
export const TIMEOUT_ENV = 'LADING_REGISTRY_TIMEOUT'

/**
 * $LADING_REGISTRY_TIMEOUT in ms, or undefined when unset (the client's default, 60 s). One
 * variable rather than a flag on every registry command, so scripts and tests set it once.
 */
export function registryTimeoutFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const v = env[TIMEOUT_ENV]
  if (v === undefined || v === '') return undefined
  const s = Number(v)
  if (!/^\s*\d+(\.\d+)?\s*$/.test(v) || !(s > 0) || s > 86_400)
    throw new LadingError('USAGE', `${TIMEOUT_ENV}: expected seconds, more than 0 and at most 86400, got ${JSON.stringify(v.slice(0, 40))}`)
  return Math.max(1, Math.round(s * 1000))
}

/** The flags' values as RegistryOptions; `env` is read for $LADING_REGISTRY_TIMEOUT at call time (never at load). */
export function registryOptionsFromFlags(f: RegistryFlagValues, prefix = '', env: NodeJS.ProcessEnv = process.env): RegistryOptions {
  const o: RegistryOptions = {}
  const timeoutMs = registryTimeoutFromEnv(env)
  if (timeoutMs !== undefined) o.timeoutMs = timeoutMs
  // Left unset when the flag is not given, so that registries.conf's `insecure` can apply;
  // unset means verify (RegistryOptions.tlsVerify).
  if (f.tlsVerify !== undefined) o.tlsVerify = parseBoolFlag(f.tlsVerify, `--${prefix}tls-verify`, true)
  if (f.certDir) o.certDir = f.certDir
  if (f.creds !== undefined) o.creds = parseCredsOption(f.creds)
  if (f.authfile) o.authFile = f.authfile
  return o
}
