/**
 * The registry flags every registry command shares (skopeo's spelling): --tls-verify[=BOOL],
 * --cert-dir DIR, --creds USER[:PASS], --authfile FILE, turned into RegistryOptions. Pure: the
 * commands read argv, this only interprets values.
 */
import { LadingError } from '../../errors.js'
import { parseCredsOption } from '../auth/credentials.js'
import type { RegistryOptions } from './client.js'

export interface RegistryFlagValues {
  tlsVerify?: string | boolean
  certDir?: string
  creds?: string
  authfile?: string
}

/** `--tls-verify`, `--tls-verify=true|false` (commander gives true for the bare flag). */
export function parseBoolFlag(v: string | boolean | undefined, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt
  if (typeof v === 'boolean') return v
  if (/^(true|1|yes)$/i.test(v)) return true
  if (/^(false|0|no)$/i.test(v)) return false
  throw new LadingError('USAGE', `${name}: expected true or false, got ${JSON.stringify(v)}`)
}

export function registryOptionsFromFlags(f: RegistryFlagValues, prefix = ''): RegistryOptions {
  const o: RegistryOptions = {}
  // Left unset when the flag is not given, so that registries.conf's `insecure` can apply;
  // unset means verify (RegistryOptions.tlsVerify).
  if (f.tlsVerify !== undefined) o.tlsVerify = parseBoolFlag(f.tlsVerify, `--${prefix}tls-verify`, true)
  if (f.certDir) o.certDir = f.certDir
  if (f.creds !== undefined) o.creds = parseCredsOption(f.creds)
  if (f.authfile) o.authFile = f.authfile
  return o
}
