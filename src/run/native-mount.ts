/**
 * The optional native addon for the system calls of a run (native/mount.c): mount(2), umount2(2)
 * and syncfs(2), which Node lacks. It is built with the gzip addon by `npm install`
 * (scripts/build-native.sh). Without it (no compiler, a failed build), or with
 * LADING_NATIVE_MOUNT=0 in the environment, callers use util-linux `mount`/`umount` and
 * coreutils' `sync -f` instead: the same calls, through a process each (2-4 ms apiece).
 */
export interface NativeMount {
  /** mount(2); relative paths in `data` resolve from `cwd` when given. Throws with `code` = errno name. */
  mount(source: string, target: string, fstype: string, flags: number, data: string, cwd?: string): void
  /** umount2(2). Throws with `code` = errno name (EINVAL: not a mount point). */
  umount2(target: string, flags: number): void
  /** syncfs(2) of the file system holding `path`. */
  syncfs(path: string): void
}

/** umount2(2)'s MNT_DETACH: a lazy unmount, for a mount some process still holds open. */
export const MNT_DETACH = 2

/**
 * From build/src/run/ (and the bundle in build/src/cli/) to the repository root. Resolved on
 * first use, not at module load: the start-up snapshot loads modules at build time, and the
 * package may have moved since (native-gzip.ts does the same for its addon).
 */
const addonPath = (): string => new URL('../../../native/build/Release/lading_mount.node', import.meta.url).pathname
let loaded: NativeMount | null | undefined
let loadError: string | undefined

export function nativeMount(): NativeMount | undefined {
  if (loaded === undefined) {
    loaded = null
    if (process.env.LADING_NATIVE_MOUNT === '0') {
      loadError = 'LADING_NATIVE_MOUNT=0'
    } else {
      try {
        // process.dlopen, not require(): the module loader's resolution took 1.2 ms of the
        // 1.3 ms that loading the addon cost on every run (0.14 ms this way).
        const mod = { exports: {} as Partial<NativeMount> }
        process.dlopen(mod, addonPath())
        const m = mod.exports
        if (typeof m.mount === 'function' && typeof m.umount2 === 'function' && typeof m.syncfs === 'function') loaded = m as NativeMount
        else loadError = `${addonPath()} is an older build (npm rebuild)`
      } catch (e) {
        loadError = (e as Error).message.split('\n')[0]
      }
    }
  }
  return loaded ?? undefined
}

/** Why the addon is not in use (for tests and --debug), or undefined when it is. */
export function nativeMountUnavailableReason(): string | undefined {
  return nativeMount() ? undefined : loadError
}
