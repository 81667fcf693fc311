/**
 * Setting extended attributes from layer entries (pax SCHILY.xattr.* records; image-spec layer.md
 * leaves xattrs to the tar format). Uses @napi-rs/xattr, whose calls are the l*xattr variants: they
 * act on a symlink itself, never through it (checked when it was chosen), so a hostile symlink
 * cannot redirect an xattr write outside the root.
 *
 * Policy (which names we set):
 * - `security.capability` (file capabilities): set as root; rootless it needs privileges we lack.
 * - `user.*`: always attempted (not on symlinks or devices: the kernel refuses user.* there).
 * - `trusted.*`: only as root (non-rootless); the kernel requires CAP_SYS_ADMIN.
 * - everything else (security.selinux, system.posix_acl_*, ...) is skipped with a warning: those
 *   describe the build host's policy, not the image's contents.
 * A failure from the filesystem (EPERM, ENOTSUP, ENOSPC for xattrs) is a warning, not an error:
 * the file itself is extracted, as GNU tar does with --xattrs.
 */
import { createRequire } from 'node:module'
import { quoteName } from '../errors.js'

/** The calls of @napi-rs/xattr that Lading uses. */
export interface XattrApi {
  setAttributeSync(p: string, name: string, value: Buffer): void
  listAttributesSync(p: string): string[]
  getAttributeSync(p: string, name: string): Buffer | null
  removeAttributeSync(p: string, name: string): void
}
let api: XattrApi | undefined
/** @napi-rs/xattr, loaded on first use: a native addon is never part of the start-up snapshot. */
export function xattrApi(): XattrApi {
  api ??= createRequire(import.meta.url)('@napi-rs/xattr') as XattrApi
  return api
}

export type XattrTarget = 'file' | 'dir' | 'symlink' | 'special'

/** Why a name is skipped, or undefined when it should be set. */
export function xattrSkipReason(name: string, target: XattrTarget, privileged: boolean): string | undefined {
  if (name === 'security.capability') {
    if (!privileged) return 'needs root'
    return undefined
  }
  if (name.startsWith('user.')) {
    if (target === 'symlink' || target === 'special') return 'user.* is not allowed on symlinks and devices'
    return undefined
  }
  if (name.startsWith('trusted.')) return privileged ? undefined : 'trusted.* needs root'
  return 'namespace not applied by lading'
}

/**
 * Set `xattrs` on `host` (already resolved inside the root; never followed if it is a symlink).
 * Skips and failures go to `warn`, each naming the entry and the attribute.
 */
export function applyXattrs(
  host: string,
  xattrs: ReadonlyMap<string, Buffer>,
  target: XattrTarget,
  privileged: boolean,
  entry: string,
  warn: (msg: string) => void,
): void {
  for (const [name, value] of xattrs) {
    const skip = xattrSkipReason(name, target, privileged)
    if (skip !== undefined) {
      warn(`layer entry ${quoteName(entry)}: xattr ${name} skipped (${skip})`)
      continue
    }
    try {
      xattrApi().setAttributeSync(host, name, value)
    } catch (e) {
      warn(`layer entry ${quoteName(entry)}: xattr ${name} not set: ${(e as Error).message}`)
    }
  }
}
