/**
 * The optional native addon for the system calls of a run (native/mount.c): mount(2), umount2(2)
 * and syncfs(2), which Node lacks. It is built with the gzip addon by `npm install`
 * (scripts/build-native.sh). Without it (no compiler, a failed build), or with
 * LADING_NATIVE_MOUNT=0 in the environment, callers use util-linux `mount`/`umount` and
 * coreutils' `sync -f` instead: the same calls, through a process each (2-4 ms apiece).
 */
import { optionalAddon } from '../io/native-addon.js'

export interface NativeMount {
  /** mount(2); relative paths in `data` resolve from `cwd` when given. Throws with `code` = errno name. */
  mount(source: string, target: string, fstype: string, flags: number, data: string, cwd?: string): void
  /** umount2(2). Throws with `code` = errno name (EINVAL: not a mount point). */
  umount2(target: string, flags: number): void
  /** syncfs(2) of the file system holding `path`. */
  syncfs(path: string): void
  /** syncfs(2) on libuv's pool; the path is opened at once (throws as syncfs does), the promise settles when the sync ends. */
  syncfsStart(path: string): Promise<void>
}

/** umount2(2)'s MNT_DETACH: a lazy unmount, for a mount some process still holds open. */
export const MNT_DETACH = 2

const addon = optionalAddon<NativeMount>('lading_mount', ['mount', 'umount2', 'syncfs', 'syncfsStart'], { env: 'LADING_NATIVE_MOUNT', value: '0' })

export function nativeMount(): NativeMount | undefined {
  return addon.get()
}

/** Why the addon is not in use (for tests and --debug), or undefined when it is. */
export function nativeMountUnavailableReason(): string | undefined {
  return addon.unavailableReason()
}
