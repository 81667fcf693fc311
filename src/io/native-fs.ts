/**
 * The optional native addon for file-system calls Node lacks (native/mount.c): mount(2),
 * umount2(2) and syncfs(2) for `lading run`, and ext4's top-directory flag (hintTreeParent). It is
 * built with the other addons by `npm install` (scripts/build-native.sh). Without it (no
 * compiler, a failed build), or with LADING_NATIVE_MOUNT=0 in the environment, callers use
 * util-linux `mount`/`umount` and coreutils' `sync -f` instead: the same calls, through a process
 * each (2-4 ms apiece); the flag is then not set.
 */
import { optionalAddon } from './native-addon.js'

export interface NativeMount {
  /** mount(2); relative paths in `data` resolve from `cwd` when given. Throws with `code` = errno name. */
  mount(source: string, target: string, fstype: string, flags: number, data: string, cwd?: string): void
  /** umount2(2). Throws with `code` = errno name (EINVAL: not a mount point). */
  umount2(target: string, flags: number): void
  /** syncfs(2) of the file system holding `path`. */
  syncfs(path: string): void
  /** syncfs(2) on libuv's pool; the path is opened at once (throws as syncfs does), the promise settles when the sync ends. */
  syncfsStart(path: string): Promise<void>
  /** Set FS_TOPDIR_FL on the directory `path`; false, never an exception, where the file system has no such flag. */
  topdir(path: string): boolean
}

/** umount2(2)'s MNT_DETACH: a lazy unmount, for a mount some process still holds open. */
export const MNT_DETACH = 2

const addon = optionalAddon<NativeMount>('lading_mount', ['mount', 'umount2', 'syncfs', 'syncfsStart', 'topdir'], { env: 'LADING_NATIVE_MOUNT', value: '0' })

export function nativeMount(): NativeMount | undefined {
  return addon.get()
}

/** Why the addon is not in use (for tests and --debug), or undefined when it is. */
export function nativeMountUnavailableReason(): string | undefined {
  return addon.unavailableReason()
}

/**
 * Hint that `dir` holds whole trees under unique names (the store's unpacked layers, a build's
 * scratch trees): on ext4 each new entry then goes to a block group picked afresh instead of
 * beside its siblings (the Orlov allocator's rule for top directories, `chattr +T`). On an ext4
 * without a journal, a group where a tree was removed in the last minutes makes every new inode
 * there scan past the freed ones (fs/ext4/ialloc.c recently_deleted()): 6,000 files took
 * 0.5-1.2 s there against 50 ms in a fresh group. A no-op elsewhere (tmpfs, xfs, btrfs,
 * overlayfs) and without the addon; never throws.
 */
export function hintTreeParent(dir: string): void {
  try {
    addon.get()?.topdir(dir)
  } catch {
    // A hint only: a path the addon refuses (too long, a NUL byte) changes nothing.
  }
}
