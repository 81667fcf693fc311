/**
 * A container's root filesystem, made from the store's unpacked layers without changing them:
 *
 * - overlay: an overlayfs mount (docs.kernel.org/filesystems/overlayfs.html) with the layer trees
 *   as lowerdirs (top layer first), and the container's own upperdir/workdir. The layers carry
 *   overlayfs' own whiteout markers, so the kernel merges them as layer.md §Applying Changesets
 *   does. Needs the right to mount: root here; a rootless user would need to be inside a user
 *   namespace it owns, which `lading` is not while it prepares the container.
 * - copy: the layers merged into the container's own directory, bottom to top, by GNU cp with
 *   `--reflink=auto` (a copy-on-write clone where the file system has them: btrfs, xfs; a copy
 *   elsewhere), after removing what each layer's markers delete. Node's fs.cp copies neither
 *   owners, xattrs, device nodes nor fifos, and has no reflink-or-copy for trees; cp -a does all.
 *
 * Mounting uses mount(2)/umount2(2) through the optional addon (io/native-fs.ts): Node has
 * neither, and util-linux `mount`/`umount`, the fallback without the addon, cost a process each
 * on the path of every run.
 */
import { spawnSync } from 'node:child_process'
import { lstatSync, promises as fsp, readdirSync, readFileSync, rmSync, type Stats } from 'node:fs'
import path from 'node:path'
import { LadingError, isErrno } from '../errors.js'
import { xattrApi } from '../layer/xattr.js'
import { MNT_DETACH, nativeMount } from '../io/native-fs.js'

export type RootfsKind = 'overlay' | 'copy'

export interface ContainerDirs {
  /** Where the root filesystem appears (the mount point, or the copy). */
  rootfs: string
  upper: string
  work: string
}

/** Is `dir` a mount point (per /proc/self/mountinfo)? */
export function isMounted(dir: string): boolean {
  let text: string
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return false
  }
  const want = path.resolve(dir)
  // mountinfo(5): field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
  return text.split('\n').some((line) => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === want)
}

/** Can this process mount overlayfs? (root, and the kernel has it.) */
export function overlayAvailable(): boolean {
  if (process.getuid?.() !== 0) return false
  try {
    return /\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'))
  } catch {
    return false
  }
}

/**
 * Mount the overlay. `layers` are tree directories, bottom first. Paths are given relative to
 * `cwd` (the store root) to stay under the kernel's one-page limit on mount options for images
 * with many layers; a path holding `,` or `:` cannot be spelled in the options and is refused.
 */
export function mountOverlay(layers: readonly string[], dirs: ContainerDirs, cwd: string, opts: { volatile?: boolean } = {}): void {
  if (layers.length === 0) throw new LadingError('UNSUPPORTED', 'an image without layers has no root filesystem to mount')
  const rel = (p: string): string => {
    const r = path.relative(cwd, p)
    if (/[,:\\]/.test(r))
      throw new LadingError('UNSUPPORTED', `overlay: the path ${JSON.stringify(p)} contains ',' ':' or '\\', which overlay mount options cannot carry`)
    return r
  }
  // volatile (overlayfs.html §Volatile mount, Linux 5.10): no sync of the upper file system,
  // for a container whose writable layer is thrown away when it exits. Without it the unmount
  // syncs the whole file system of the store (ovl_sync_fs): 30-150 ms on this machine's disk,
  // with everyone's dirty data in it. The container's own fsync calls on its root are then no-ops,
  // which is what a writable layer that never outlives the container needs (podman does the same
  // for `--rm`). A container that is kept (commit, restart) gets a normal mount.
  const data = `lowerdir=${[...layers].reverse().map(rel).join(':')},upperdir=${rel(dirs.upper)},workdir=${rel(dirs.work)}${opts.volatile ? ',volatile' : ''}`
  if (data.length > 4000) throw new LadingError('UNSUPPORTED', `overlay: ${layers.length} layers make mount options longer than the kernel's limit`)
  const native = nativeMount()
  if (native) {
    try {
      native.mount('overlay', path.resolve(dirs.rootfs), 'overlay', 0, data, cwd)
    } catch (e) {
      throw new LadingError('CONFLICT', `overlay mount of ${dirs.rootfs} failed: ${(e as Error).message}`, { cause: e })
    }
    return
  }
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', data, dirs.rootfs], { cwd, encoding: 'utf8' })
  if (r.error !== undefined || r.status !== 0) {
    throw new LadingError('CONFLICT', `overlay mount of ${dirs.rootfs} failed: ${(r.error?.message ?? r.stderr).trim()}`)
  }
}

/** Mounts stacked on one point that unmount() takes off before it gives up (one is the rule). */
const MAX_STACKED_MOUNTS = 8

/**
 * Unmount whatever is mounted at `dir` (lazily if busy: a process may still hold it open).
 * Contract: on return nothing is mounted there; otherwise CONFLICT. A `dir` that is no mount
 * point (or does not exist) is left alone.
 */
export function unmount(dir: string): void {
  const native = nativeMount()
  for (let i = 0; i < MAX_STACKED_MOUNTS; i++) {
    if (native) {
      // umount2 answers "is it mounted?" itself (EINVAL: not a mount point), which spares
      // reading /proc/self/mountinfo.
      try {
        native.umount2(dir, 0)
        continue
      } catch (e) {
        if (isErrno(e, 'EINVAL') || isErrno(e, 'ENOENT')) return
        // Unprivileged, umount2 refuses before it looks (EPERM): nothing of ours can be mounted
        // where we may not unmount, but say so only after checking.
        if (isErrno(e, 'EPERM') && !isMounted(dir)) return
        if (!isErrno(e, 'EBUSY')) throw new LadingError('CONFLICT', `umount ${dir} failed: ${(e as Error).message}`, { cause: e })
      }
      try {
        native.umount2(dir, MNT_DETACH)
      } catch (e) {
        throw new LadingError('CONFLICT', `umount ${dir} failed: ${(e as Error).message}`, { cause: e })
      }
      continue
    }
    if (!isMounted(dir)) return
    const r = spawnSync('umount', [dir], { encoding: 'utf8' })
    if (r.status === 0) continue
    const lazy = spawnSync('umount', ['-l', dir], { encoding: 'utf8' })
    if (lazy.status !== 0) throw new LadingError('CONFLICT', `umount ${dir} failed: ${(lazy.stderr || r.stderr).trim()}`)
  }
  throw new LadingError('CONFLICT', `${dir} is still mounted after ${MAX_STACKED_MOUNTS} unmounts`)
}

const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque']

function isWhiteoutMarker(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0
}

function isOpaque(dir: string): boolean {
  for (const name of OPAQUE_XATTRS) {
    try {
      if (xattrApi().getAttributeSync(dir, name)?.toString() === 'y') return true
    } catch {
      // not set, or the namespace is not readable here
    }
  }
  return false
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p)
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined
    throw e
  }
}

/**
 * Before copying `layer` over `target`: carry out its markers (remove what they delete, empty
 * opaque directories) and clear type conflicts cp cannot resolve (a directory over a file and the
 * reverse). Returns the markers' paths, which cp copies as devices and must be removed after.
 */
function prepareMerge(layer: string, target: string, markers: string[], opaque: string[]): void {
  for (const name of readdirSync(layer)) {
    const src = path.join(layer, name)
    const dst = path.join(target, name)
    const st = lstatSync(src)
    const dst0 = lstatOrUndefined(dst)
    if (isWhiteoutMarker(st)) {
      if (dst0) rmSync(dst, { recursive: true, force: true })
      markers.push(dst)
      continue
    }
    if (st.isDirectory()) {
      const opaqueDir = isOpaque(src)
      if (opaqueDir) opaque.push(dst)
      if (dst0 && !dst0.isDirectory()) rmSync(dst, { force: true })
      else if (dst0 && opaqueDir) for (const n of readdirSync(dst)) rmSync(path.join(dst, n), { recursive: true, force: true })
      prepareMerge(src, dst, markers, opaque)
    } else if (dst0?.isDirectory()) {
      rmSync(dst, { recursive: true, force: true })
    }
  }
}

/** Merge `layers` (bottom first) into the empty directory `target` (the copy fallback). */
export async function copyLayers(layers: readonly string[], target: string): Promise<void> {
  for (const layer of layers) {
    const markers: string[] = []
    const opaque: string[] = []
    prepareMerge(layer, target, markers, opaque)
    // --remove-destination: replace files, never write through them (a hardlinked file of a
    // lower layer keeps its content); --no-dereference is implied by -a.
    const r = spawnSync('cp', ['-a', '--reflink=auto', '--remove-destination', `${layer}/.`, `${target}/`], { encoding: 'utf8' })
    if (r.error !== undefined || r.status !== 0)
      throw new LadingError('CONFLICT', `copying layer ${layer} into ${target} failed: ${(r.error?.message ?? r.stderr).trim().split('\n')[0]}`)
    for (const m of markers) {
      const st = lstatOrUndefined(m)
      if (st && isWhiteoutMarker(st)) await fsp.rm(m, { force: true })
    }
    // cp -a copies the opaque markers too: in a merged tree they would mean nothing, and a
    // commit of the container must not carry them into a layer.
    for (const dir of opaque) {
      for (const name of OPAQUE_XATTRS) {
        try {
          xattrApi().removeAttributeSync(dir, name)
        } catch {
          /* not set */
        }
      }
    }
  }
}
