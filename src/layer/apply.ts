/**
 * Applying one layer (an uncompressed tar changeset) to a root filesystem directory, per
 * image-spec layer.md: §Changesets (added/modified/removed entries), §Whiteouts (`.wh.NAME` removes
 * NAME of lower layers; `.wh..wh..opq` hides a directory's lower contents), and the file types of
 * §File Types (regular files, directories, symlinks, hardlinks, char/block devices, fifos).
 *
 * Contract:
 * - Nothing outside `root` is created, written, chmod'ed, chown'ed, given xattrs or deleted: every
 *   name goes through path-safety.ts (resolved inside the root as if it were `/`, the final
 *   component never followed). A refusal is LadingError UNSAFE_PATH naming the entry.
 * - Whiteouts only remove lower-layer content: paths this layer created (fresh) or descended into
 *   are tracked, so an opaque marker or `.wh.` entry hides lower content whatever its position in
 *   the tar, and never this layer's own entries (layer.md §Whiteouts).
 * - Metadata order: content, then chown (as root), then xattrs (chown and writes clear
 *   security.capability), then chmod (chown clears setuid/setgid; a mode-000 file would refuse
 *   user.* xattrs to its unprivileged owner), then times. Directories get mode and
 *   times at the end, deepest first, so that creating their contents neither fails (rootless,
 *   mode 000/0555) nor bumps their mtime afterwards (umoci issue 222). A lower directory that
 *   this layer changes without carrying an entry for it keeps its mode and times.
 * - On error the root holds a partly applied layer (as with umoci and GNU tar): callers unpack into
 *   a fresh directory and discard it on failure.
 * - Speed: the hot loop is synchronous fs calls on whole small-file buffers handed over by the tar
 *   reader, while decompression runs on libuv's pool; only files larger than the reader's
 *   small-file limit are written chunk by chunk (bounded memory).
 */
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  ftruncateSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs'
import type { Readable } from 'node:stream'
import { LadingError, isErrno, isLadingError, quoteName } from '../errors.js'
import { type IdMapping, mapId } from './id-map.js'
import { RootResolver, entryComponents, type ResolvedPath } from './path-safety.js'
import { WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './tar-constants.js'
import { readTar, type SparseRegion, type TarEntry, type TarHeader } from './tar-reader.js'
import { applyXattrs, xattrApi } from './xattr.js'

export type { IdMapping } from './id-map.js'

export interface ApplyOptions {
  /** Unprivileged unpack: ownership only through uidMap/gidMap (else not applied), devices skipped. */
  rootless?: boolean
  /** Container id -> host id ranges applied to every entry's uid (umoci --uid-map). */
  uidMap?: IdMapping[]
  gidMap?: IdMapping[]
  /** Limit on the total bytes of file data extracted (default 64 GiB) -> SIZE_LIMIT. */
  maxBytes?: number
  /** Non-fatal problems (skipped xattrs, devices, unmapped ids). */
  onWarning?: (msg: string) => void
  /**
   * A directory entry whose path is a symlink to a directory (resolved inside the root) leaves the
   * symlink and the directory it points to as they are, and later entries below the path land in
   * that directory: umoci's --keep-dirlinks (which also ignores the entry's metadata), GNU tar's
   * --keep-directory-symlink. Off: the symlink is replaced by a directory (layer.md).
   */
  keepDirlinks?: boolean
  /**
   * How whiteouts are applied (default `{ kind: 'apply' }`). See WhiteoutStrategy.
   */
  whiteouts?: WhiteoutStrategy
}

/**
 * The two ways a layer's whiteouts can be carried out, as umoci has both:
 * - `apply` (the default): the layer is applied on top of its lower layers in one root, so a
 *   `.wh.NAME` entry removes NAME and `.wh..wh..opq` empties the directory (layer.md §Whiteouts).
 * - `overlayfs`: the layer is unpacked ALONE into its own directory, to be stacked later as one
 *   overlayfs lowerdir. The markers are then written in overlayfs' own form
 *   (docs.kernel.org/filesystems/overlayfs.html §whiteouts and opaque directories): a character
 *   device 0/0 at NAME for a deleted path, and the xattr `<prefix>.overlay.opaque` = "y" on an
 *   opaque directory, `trusted` for a mount made by root, `user` for one made with `userxattr`
 *   inside a user namespace. The layer's own entries still win over its markers, whatever their
 *   order (layer.md §Whiteouts: a whiteout never hides its own layer's entries).
 */
export type WhiteoutStrategy = { kind: 'apply' } | { kind: 'overlayfs'; opaqueXattr: 'trusted.overlay.opaque' | 'user.overlay.opaque' }

/** overlayfs' opaque value (docs.kernel.org/filesystems/overlayfs.html §whiteouts and opaque directories). */
export const OVERLAY_OPAQUE_VALUE = 'y'

export interface ApplyStats {
  entries: number
  /** Bytes of file data written (the logical size for sparse files). */
  bytes: number
  whiteouts: number
}

export const DEFAULT_MAX_EXTRACT_BYTES = 64 * 1024 ** 3

const OPEN_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
const OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW

/**
 * Apply one uncompressed layer tar to `root` per layer.md (whiteouts, opaque dirs), resolving every
 * path inside root. `root` must be an existing directory. Not safe to run twice at once on one root.
 */
export async function applyLayer(root: string, tar: Readable, opts: ApplyOptions = {}): Promise<ApplyStats> {
  let applier: LayerApplier
  try {
    applier = newApplier(root, opts)
  } catch (e) {
    tar.destroy()
    throw e
  }
  return applyAll(applier, readTar(tar))
}

/**
 * Apply entries given as objects rather than as a tar: what readTar would yield for the archive
 * they stand for (tar-writer's tarEntriesOf makes them from tar sources). Every rule of
 * applyLayer holds; only encoding a tar and parsing it back is skipped (`lading build` COPY
 * writes thousands of small files, and the round trip cost more than writing them).
 */
export async function applyEntries(root: string, entries: Iterable<TarEntry> | AsyncIterable<TarEntry>, opts: ApplyOptions = {}): Promise<ApplyStats> {
  return applyAll(newApplier(root, opts), entries)
}

function newApplier(root: string, opts: ApplyOptions): LayerApplier {
  let real: string
  try {
    real = realpathSync(root)
    if (!lstatSync(real).isDirectory()) throw new Error('not a directory')
  } catch (e) {
    throw new LadingError('NOT_FOUND', `unpack root ${root}: not an existing directory`, { cause: e })
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (!opts.rootless && !isRoot) throw new LadingError('USAGE', 'applying a layer with ownership needs root; use the rootless option as an unprivileged user')
  return new LayerApplier(real, opts, isRoot)
}

async function applyAll(applier: LayerApplier, entries: Iterable<TarEntry> | AsyncIterable<TarEntry>): Promise<ApplyStats> {
  if (Symbol.iterator in entries) {
    // Synchronous entries stay synchronous: no promise per entry, only for a streamed body.
    for (const entry of entries) {
      const pending = applier.apply(entry)
      if (pending !== undefined) await pending
    }
  } else {
    for await (const entry of entries) {
      const pending = applier.apply(entry)
      if (pending !== undefined) await pending
    }
  }
  applier.finish()
  return applier.stats
}

interface DirMeta {
  mode: number
  atime: number | undefined
  mtime: number | undefined
}

class LayerApplier {
  readonly stats: ApplyStats = { entries: 0, bytes: 0, whiteouts: 0 }
  #resolver: RootResolver
  #rootless: boolean
  #privileged: boolean
  #uidMap: IdMapping[] | undefined
  #gidMap: IdMapping[] | undefined
  #chown: boolean
  #maxBytes: number
  #warn: (msg: string) => void
  #warned = new Set<string>()
  #keepDirlinks: boolean
  /** Directory modes and times to set at the end (canonical rel path -> meta). */
  #dirMeta = new Map<string, DirMeta>()
  /** Paths whose inode this layer created (files, links, new directories). */
  #fresh = new Set<string>()
  /** Directories this layer kept from lower layers but put entries into (or named as entries). */
  #kept = new Set<string>()
  /**
   * The root was empty when this layer started: there is no lower content, so whiteouts have
   * nothing to hide and the fresh/kept bookkeeping (one string per entry) is not needed. This keeps
   * memory flat for huge base layers.
   */
  #noLower: boolean
  /** Device nodes and fifos waiting for #flushNodes (canonical rel path -> entry). */
  #pending = new Map<string, { r: ResolvedPath; h: TarHeader }>()
  #overlayOpaque: string | undefined

  constructor(root: string, opts: ApplyOptions, isRoot: boolean) {
    this.#overlayOpaque = opts.whiteouts?.kind === 'overlayfs' ? opts.whiteouts.opaqueXattr : undefined
    this.#rootless = opts.rootless ?? false
    this.#privileged = isRoot && !this.#rootless
    this.#uidMap = opts.uidMap?.length ? opts.uidMap : undefined
    this.#gidMap = opts.gidMap?.length ? opts.gidMap : undefined
    // Rootless without maps: ownership is not applied (everything belongs to the unpacking user).
    this.#chown = !this.#rootless || this.#uidMap !== undefined || this.#gidMap !== undefined
    this.#maxBytes = opts.maxBytes ?? DEFAULT_MAX_EXTRACT_BYTES
    this.#keepDirlinks = opts.keepDirlinks ?? false
    this.#noLower = readdirSync(root).length === 0
    const warn = opts.onWarning ?? (() => {})
    this.#warn = warn
    this.#resolver = new RootResolver(root, {
      onEscape: 'refuse',
      makeDir: (host) => mkdirSync(host, 0o755),
      onCreateDir: (rel) => this.#touch(rel, true),
      onAccessDenied: (host, rel) => this.#unlock(host, rel),
    })
  }

  /** Apply one entry; returns a promise only for entries whose body must be streamed. */
  apply(e: TarEntry): Promise<void> | undefined {
    this.stats.entries++
    const h = e.header
    try {
      const comps = entryComponents(h.path, h.path)
      const base = comps.length > 0 ? comps[comps.length - 1]! : ''
      if (base.startsWith(WHITEOUT_PREFIX)) {
        this.#whiteout(comps, h)
        return undefined
      }
      switch (h.type) {
        case 'dir':
          this.#dir(comps, h)
          return undefined
        case 'file':
          return this.#file(comps, e)
        case 'symlink':
          this.#symlink(comps, h)
          return undefined
        case 'hardlink':
          this.#hardlink(comps, h)
          return undefined
        case 'char':
        case 'block':
        case 'fifo':
          this.#special(comps, h)
          return undefined
        default:
          this.#warn(`layer entry ${quoteName(h.path)}: unknown tar type ${quoteName(h.typeflag)} skipped`)
          return undefined
      }
    } catch (err) {
      throw this.#annotate(err, h.path)
    }
  }

  /** Set directory modes and times, deepest first (see the module comment). */
  finish(): void {
    this.#flushNodes()
    const dirs = [...this.#dirMeta].sort((a, b) => depth(b[0]) - depth(a[0]))
    for (const [rel, meta] of dirs) {
      const r = rel === '' ? { host: this.#resolver.root } : this.#resolver.resolveParent(rel.split('/'), rel, 'existing')
      if (r === undefined) continue
      // Through a descriptor opened without following a final symlink where possible; a directory
      // we cannot open (rootless, a lower mode-000 one) is checked with lstat and set by path.
      let fd: number | undefined
      try {
        fd = openSync(r.host, OPEN_DIR)
      } catch (e) {
        if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR') || isErrno(e, 'ELOOP')) continue
        if (!isErrno(e, 'EACCES')) throw e
      }
      if (fd !== undefined) {
        try {
          fchmodSync(fd, meta.mode)
          if (meta.mtime !== undefined) futimesSync(fd, meta.atime ?? meta.mtime, meta.mtime)
        } finally {
          closeSync(fd)
        }
        continue
      }
      if (!lstatSync(r.host).isDirectory()) continue
      chmodSync(r.host, meta.mode)
      if (meta.mtime !== undefined) utimesSync(r.host, meta.atime ?? meta.mtime, meta.mtime)
    }
  }

  // --- entry types ---------------------------------------------------------------------------

  #dir(comps: string[], h: TarHeader): void {
    let r: ResolvedPath
    let fresh = false
    if (comps.length === 0) {
      r = { rel: '', host: this.#resolver.root, parentRel: '', name: '' }
    } else {
      r = this.#resolver.resolveParent(comps, h.path, 'create')!
      const target = this.#keepDirlinks ? this.#dirlinkTarget(r, h.path) : undefined
      if (target) {
        this.#resolver.noteDir(target.rel)
        return
      }
      fresh = this.#retry(r, () => this.#mkdir(r))
    }
    this.#resolver.noteDir(r.rel)
    this.#touch(r.rel, fresh)
    this.#own(r.host, h)
    if (h.xattrs !== undefined) applyXattrs(r.host, h.xattrs, 'dir', this.#privileged, h.path, this.#warn)
    this.#dirMeta.set(r.rel, { mode: h.mode, atime: h.atime, mtime: h.mtime })
  }

  /**
   * keepDirlinks: when `r` is a symlink whose target, resolved inside the root like any path (an
   * absolute target means the container's `/`; climbing above the root is UNSAFE_PATH), is an
   * existing directory, that directory. Otherwise undefined, and the entry replaces what is there.
   */
  #dirlinkTarget(r: ResolvedPath, entry: string): ResolvedPath | undefined {
    let st
    try {
      st = lstatSync(r.host)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined
      throw e
    }
    if (!st.isSymbolicLink()) return undefined
    const t = this.#resolver.resolveFull(r.rel, entry)
    if (t.rel === '') return undefined // a link to the root itself: not a directory we may take over
    try {
      return lstatSync(t.host).isDirectory() ? t : undefined
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined
      throw e
    }
  }

  /** mkdir, or reuse an existing directory (true when created). A non-directory is replaced. */
  #mkdir(r: ResolvedPath): boolean {
    try {
      mkdirSync(r.host, 0o700)
      return true
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e
    }
    const st = lstatSync(r.host)
    if (st.isDirectory()) {
      // Reused from a lower layer: in rootless mode make sure we can fill it; its final mode is
      // set at the end from this entry.
      if (this.#rootless && (st.mode & 0o700) !== 0o700) chmodSync(r.host, (st.mode & 0o7777) | 0o700)
      return false
    }
    this.#remove(r, st)
    mkdirSync(r.host, 0o700)
    return true
  }

  #file(comps: string[], e: TarEntry): Promise<void> | undefined {
    const h = e.header
    if (comps.length === 0) throw new LadingError('UNSAFE_PATH', `layer entry ${quoteName(h.path)}: a file cannot replace the root directory`)
    const logical = h.sparse !== undefined ? h.sparse.realSize : h.size
    this.stats.bytes += logical
    if (this.stats.bytes > this.#maxBytes) {
      throw new LadingError('SIZE_LIMIT', `layer entry ${quoteName(h.path)}: extracting it passes the limit of ${this.#maxBytes} bytes of file data`)
    }
    const r = this.#resolver.resolveParent(comps, h.path, 'create')!
    const fd = this.#retry(r, () => this.#openNew(r))
    this.#touch(r.rel, true)
    if (e.body !== undefined) {
      try {
        if (h.sparse !== undefined) {
          const w = new SparseWriter(fd, h.sparse.regions)
          w.write(e.body)
          ftruncateSync(fd, h.sparse.realSize)
        } else {
          writeAll(fd, e.body)
        }
        this.#finishFile(fd, r, h)
      } finally {
        closeSync(fd)
      }
      return undefined
    }
    return (async () => {
      try {
        const sparse = h.sparse !== undefined ? new SparseWriter(fd, h.sparse.regions) : undefined
        for await (const chunk of e.chunks()) {
          if (sparse !== undefined) sparse.write(chunk)
          else writeAll(fd, chunk)
        }
        if (h.sparse !== undefined) ftruncateSync(fd, h.sparse.realSize)
        this.#finishFile(fd, r, h)
      } catch (err) {
        throw this.#annotate(err, h.path)
      } finally {
        closeSync(fd)
      }
    })()
  }

  /** Create a new file for writing; whatever is at the path (file, symlink, directory) is replaced, never followed. */
  #openNew(r: ResolvedPath): number {
    try {
      return openSync(r.host, OPEN_NEW, 0o600)
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e
    }
    // Replace (unlink, not truncate): a hardlinked lower-layer file must keep its old content.
    this.#remove(r, lstatSync(r.host))
    return openSync(r.host, OPEN_NEW, 0o600)
  }

  #finishFile(fd: number, r: ResolvedPath, h: TarHeader): void {
    const ids = this.#ids(h)
    if (ids !== undefined) {
      try {
        fchownSync(fd, ids.uid, ids.gid)
      } catch (e) {
        this.#chownFailed(e, h)
      }
    }
    // xattrs after chown (which clears security.capability) but before chmod: user.* needs write
    // permission, which a mode-000 file would deny an unprivileged owner.
    if (h.xattrs !== undefined) applyXattrs(r.host, h.xattrs, 'file', this.#privileged, h.path, this.#warn)
    fchmodSync(fd, h.mode)
    futimesSync(fd, h.atime ?? h.mtime, h.mtime)
  }

  #symlink(comps: string[], h: TarHeader): void {
    if (comps.length === 0) throw new LadingError('UNSAFE_PATH', `layer entry ${quoteName(h.path)}: a symlink cannot replace the root directory`)
    if (h.linkpath === '') throw new LadingError('INVALID_TAR', `layer entry ${quoteName(h.path)}: symlink with an empty target`)
    const r = this.#resolver.resolveParent(comps, h.path, 'create')!
    this.#retry(r, () => {
      try {
        symlinkSync(h.linkpath, r.host)
      } catch (e) {
        if (!isErrno(e, 'EEXIST')) throw e
        this.#remove(r, lstatSync(r.host))
        symlinkSync(h.linkpath, r.host)
      }
    })
    this.#touch(r.rel, true)
    this.#own(r.host, h)
    if (h.xattrs !== undefined) applyXattrs(r.host, h.xattrs, 'symlink', this.#privileged, h.path, this.#warn)
    lutimesSync(r.host, h.atime ?? h.mtime, h.mtime)
  }

  #hardlink(comps: string[], h: TarHeader): void {
    this.#flushNodes() // the target may be a pending node
    const name = quoteName(h.path)
    if (comps.length === 0) throw new LadingError('UNSAFE_PATH', `layer entry ${name}: a hardlink cannot replace the root directory`)
    const tcomps = entryComponents(h.linkpath, h.path, 'hardlink target')
    if (tcomps.length === 0) throw new LadingError('INVALID_TAR', `layer entry ${name}: hardlink to the root directory`)
    const t = this.#resolver.resolveParent(tcomps, h.path, 'existing')
    let tst: Stats | undefined
    try {
      if (t !== undefined) tst = lstatSync(t.host)
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e
    }
    if (t === undefined || tst === undefined) {
      throw new LadingError('INVALID_TAR', `layer entry ${name}: hardlink target ${quoteName(h.linkpath)} does not exist inside the root`)
    }
    if (tst.isDirectory()) throw new LadingError('INVALID_TAR', `layer entry ${name}: hardlink target ${quoteName(h.linkpath)} is a directory`)
    const r = this.#resolver.resolveParent(comps, h.path, 'create')!
    this.#touch(r.rel, true)
    if (r.rel === t.rel) return
    this.#retry(r, () => {
      try {
        linkSync(t.host, r.host)
      } catch (e) {
        if (!isErrno(e, 'EEXIST')) throw e
        const st = lstatSync(r.host)
        if (st.ino === tst.ino && st.dev === tst.dev) return
        this.#remove(r, st)
        linkSync(t.host, r.host)
      }
    })
  }

  /**
   * Devices and fifos. Node has no mknod(2)/mkfifo(3), so they are made by coreutils' mknod; one
   * process per node cost ~10 ms each on the hot path (about a tenth of a Debian unpack), so the
   * path is cleared now and the nodes are made together by one `sh` at the next hardlink or at the
   * end. A later entry of this layer at the same path drops the pending node (it wins), and
   * removing an ancestor directory drops those below it, so a flush only ever creates at a path
   * that is still free, below real directories resolved inside the root.
   */
  #special(comps: string[], h: TarHeader): void {
    if (comps.length === 0) throw new LadingError('UNSAFE_PATH', `layer entry ${quoteName(h.path)}: a device cannot replace the root directory`)
    if (h.type !== 'fifo' && this.#rootless) {
      this.#warn(`layer entry ${quoteName(h.path)}: ${h.type} device ${h.devmajor}:${h.devminor} skipped (rootless)`)
      return
    }
    const r = this.#resolver.resolveParent(comps, h.path, 'create')!
    this.#retry(r, () => {
      let st: Stats | undefined
      try {
        st = lstatSync(r.host)
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e
      }
      if (st !== undefined) this.#remove(r, st)
    })
    // Rootless: the parent must be writable when the node is made later.
    if (this.#rootless) this.#unlock(this.#resolver.hostOf(r.parentRel), r.parentRel)
    this.#touch(r.rel, true)
    this.#pending.set(r.rel, { r, h })
  }

  /** Make the pending device nodes and fifos, then give them owner, mode, xattrs and times. */
  #flushNodes(): void {
    if (this.#pending.size === 0) return
    const nodes = [...this.#pending.values()]
    this.#pending.clear()
    const args: string[] = []
    for (const { r, h } of nodes) {
      // Paths are absolute (no option confusion); major/minor are numbers; '' vanishes unquoted.
      args.push(
        (h.mode & 0o777).toString(8),
        r.host,
        h.type === 'fifo' ? 'p' : h.type === 'char' ? 'c' : 'b',
        h.type === 'fifo' ? '' : String(h.devmajor),
        h.type === 'fifo' ? '' : String(h.devminor),
      )
    }
    const script = 'while [ $# -ge 5 ]; do mknod -m "$1" "$2" "$3" $4 $5 || exit 1; shift 5; done'
    const p = spawnSync('sh', ['-c', script, 'lading-mknod', ...args], { encoding: 'utf8' })
    if (p.error !== undefined || p.status !== 0) {
      const why = p.error?.message ?? p.stderr.trim()
      const failed = nodes.find(({ r }) => p.stderr.includes(r.host))
      throw new Error(`layer entry ${JSON.stringify(failed?.h.path ?? nodes[0]!.h.path)}: mknod failed: ${why}`)
    }
    for (const { r, h } of nodes) {
      try {
        this.#own(r.host, h)
        chmodSync(r.host, h.mode) // after chown; the path is the node just made, not a symlink
        if (h.xattrs !== undefined) applyXattrs(r.host, h.xattrs, 'special', this.#privileged, h.path, this.#warn)
        lutimesSync(r.host, h.atime ?? h.mtime, h.mtime)
      } catch (e) {
        throw this.#annotate(e, h.path)
      }
    }
  }

  #whiteout(comps: string[], h: TarHeader): void {
    this.stats.whiteouts++
    const base = comps[comps.length - 1]!
    const overlay = this.#overlayOpaque
    if (this.#noLower && overlay === undefined) {
      // Nothing lower to hide; a whiteout never applies to its own layer (layer.md §Whiteouts).
      // Names are still checked so a hostile layer is reported the same way.
      if (base !== WHITEOUT_OPAQUE && !base.startsWith(WHITEOUT_META_PREFIX)) {
        const target = base.slice(WHITEOUT_PREFIX.length)
        if (target === '' || target === '.' || target === '..') {
          throw new LadingError('UNSAFE_PATH', `layer entry ${quoteName(h.path)}: whiteout of ${quoteName(target)} is refused`)
        }
      }
      return
    }
    const dirComps = comps.slice(0, -1)
    if (base === WHITEOUT_OPAQUE) {
      if (overlay !== undefined) this.#overlayOpaqueMarker(dirComps, h, overlay)
      else this.#opaque(dirComps, h)
      return
    }
    if (base.startsWith(WHITEOUT_META_PREFIX)) {
      // Other `.wh..wh.` names are AUFS bookkeeping (layer.md reserves them): nothing to apply.
      this.#warn(`layer entry ${quoteName(h.path)}: reserved whiteout name skipped`)
      return
    }
    const target = base.slice(WHITEOUT_PREFIX.length)
    if (target === '' || target === '.' || target === '..') {
      throw new LadingError('UNSAFE_PATH', `layer entry ${quoteName(h.path)}: whiteout of ${quoteName(target)} is refused`)
    }
    if (overlay !== undefined) {
      this.#overlayWhiteoutMarker(dirComps, target, h)
      return
    }
    const r = this.#resolver.resolveParent([...dirComps, target], h.path, 'existing')
    // A missing parent, or a parent that is now a non-directory, means there is nothing to hide.
    if (r === undefined) return
    if (this.#fresh.has(r.rel)) return // this layer's own entry wins, whatever the order
    let st: Stats
    try {
      st = lstatSync(r.host)
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return
      throw e
    }
    if (st.isDirectory() && this.#kept.has(r.rel)) {
      // This layer put entries inside the lower directory it also whites out: keep those only.
      this.#prune(r.rel)
      return
    }
    this.#remove(r, st)
  }

  /**
   * The overlayfs strategy records whiteouts instead of carrying them out (see WhiteoutStrategy).
   * Paths resolve inside the root as for any entry; an entry of this layer already at the path
   * keeps it (its own entries win), and a later entry at the path replaces the marker as it
   * replaces any non-directory.
   */
  #overlayOpaqueMarker(dirComps: string[], h: TarHeader, xattr: string): void {
    const host = this.#markerDir(dirComps, h)
    if (host !== undefined) xattrApi().setAttributeSync(host, xattr, Buffer.from(OVERLAY_OPAQUE_VALUE))
  }

  #overlayWhiteoutMarker(dirComps: string[], target: string, h: TarHeader): void {
    if (this.#markerDir(dirComps, h) === undefined) return
    const r = this.#resolver.resolveParent([...dirComps, target], h.path, 'create')!
    if (this.#pending.has(r.rel)) return
    try {
      lstatSync(r.host)
      return // this layer's own entry is there
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e
    }
    this.#touch(r.rel, true)
    // Made with the layer's devices and fifos (one mknod batch). A 0/0 character device may be
    // made without privileges since Linux 5.8 (vfs: allow unprivileged whiteout creation).
    const marker: TarHeader = { ...h, type: 'char', devmajor: 0, devminor: 0, mode: 0, uid: 0, gid: 0, xattrs: undefined }
    this.#pending.set(r.rel, { r, h: marker })
  }

  /**
   * The directory a marker sits in, made if absent (host path), or undefined when this layer has
   * a non-directory there: it replaced the directory, which already hides everything below it
   * (umoci writes `.wh.` entries under a path its layer made a file).
   */
  #markerDir(dirComps: string[], h: TarHeader): string | undefined {
    if (dirComps.length === 0) return this.#resolver.root
    const r = this.#resolver.resolveParent(dirComps, h.path, 'create')!
    let st: Stats | undefined
    try {
      st = lstatSync(r.host)
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e
    }
    if (st !== undefined) return st.isDirectory() ? r.host : undefined
    this.#retry(r, () => this.#mkdir(r))
    this.#resolver.noteDir(r.rel)
    this.#touch(r.rel, true)
    return r.host
  }

  #opaque(dirComps: string[], h: TarHeader): void {
    let rel = ''
    if (dirComps.length > 0) {
      const r = this.#resolver.resolveParent(dirComps, h.path, 'existing')
      if (r === undefined) return
      let st: Stats
      try {
        st = lstatSync(r.host)
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return
        throw e
      }
      // Only a real directory has lower contents to hide; a symlink is never followed here.
      if (!st.isDirectory()) return
      if (this.#fresh.has(r.rel)) return // created by this layer: holds no lower content
      rel = r.rel
    }
    this.#prune(rel)
  }

  /** Remove everything under directory `rel` that this layer did not create. */
  #prune(rel: string): void {
    const host = this.#resolver.hostOf(rel)
    let names: string[]
    try {
      names = readdirSync(host)
    } catch (e) {
      if (isErrno(e, 'EACCES') && this.#unlock(host, rel)) names = readdirSync(host)
      else throw e
    }
    for (const name of names) {
      const crel = rel === '' ? name : `${rel}/${name}`
      if (this.#fresh.has(crel)) continue
      if (this.#kept.has(crel)) {
        const st = lstatSync(`${host}/${name}`)
        if (st.isDirectory()) {
          this.#prune(crel)
          continue
        }
      }
      const r: ResolvedPath = { rel: crel, host: `${host}/${name}`, parentRel: rel, name }
      this.#remove(r, lstatSync(r.host))
    }
  }

  // --- helpers -------------------------------------------------------------------------------

  /** Remove what is at `r` (never following it). Directories go recursively and leave the caches. */
  #remove(r: ResolvedPath, st: Stats): void {
    if (r.rel === '') throw new LadingError('UNSAFE_PATH', 'refusing to remove the root directory')
    if (!st.isDirectory()) {
      this.#retry(r, () => unlinkSync(r.host))
      return
    }
    this.#preserve(r.parentRel)
    try {
      rmSync(r.host, { recursive: true, force: true })
    } catch (e) {
      if (!this.#rootless || !(isErrno(e, 'EACCES') || isErrno(e, 'EPERM'))) throw e
      // Rootless: lower directories with mode 000/0555 must be opened up before removing their contents.
      openUpTree(r.host)
      rmSync(r.host, { recursive: true, force: true })
    }
    this.#resolver.forget(r.rel)
    const prefix = `${r.rel}/`
    for (const k of this.#pending.keys()) if (k.startsWith(prefix)) this.#pending.delete(k)
    for (const k of this.#dirMeta.keys()) if (k === r.rel || k.startsWith(prefix)) this.#dirMeta.delete(k)
  }

  /**
   * Before changing directory `rel` (adding or removing a child), remember its metadata so that
   * finish() restores it: a layer only sets the metadata it carries, so a lower directory this
   * layer writes into without an entry of its own keeps its mode and times (as umoci does).
   */
  #preserve(rel: string): void {
    if (this.#dirMeta.has(rel)) return
    const st = lstatSync(this.#resolver.hostOf(rel))
    this.#dirMeta.set(rel, { mode: st.mode & 0o7777, atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 })
  }

  /**
   * Run `fn`, a change inside `r.parentRel` (whose metadata is preserved first); in rootless mode
   * an EACCES from the parent directory opens it up once and retries.
   */
  #retry<T>(r: ResolvedPath, fn: () => T): T {
    this.#preserve(r.parentRel)
    try {
      return fn()
    } catch (e) {
      if (isErrno(e, 'EACCES') && this.#unlock(this.#resolver.hostOf(r.parentRel), r.parentRel)) return fn()
      throw e
    }
  }

  /**
   * Rootless: give the owner rwx on a directory (from a lower layer, e.g. mode 000) so we can work
   * inside it; its original mode is restored at the end unless this layer sets one.
   */
  #unlock(host: string, rel: string): boolean {
    if (!this.#rootless) return false
    const st = lstatSync(host)
    if (!st.isDirectory() || (st.mode & 0o700) === 0o700) return false
    chmodSync(host, (st.mode & 0o7777) | 0o700)
    if (!this.#dirMeta.has(rel)) this.#dirMeta.set(rel, { mode: st.mode & 0o7777, atime: undefined, mtime: undefined })
    return true
  }

  /** Record that this layer created (`fresh`) or entered `rel`; its ancestors are kept directories. */
  #touch(rel: string, fresh: boolean): void {
    if (this.#pending.size > 0) this.#pending.delete(rel) // a later entry at the same path wins
    if (this.#noLower) return
    if (fresh) this.#fresh.add(rel)
    else this.#kept.add(rel)
    let i = rel.lastIndexOf('/')
    while (i > 0) {
      const p = rel.slice(0, i)
      if (this.#kept.has(p)) break
      this.#kept.add(p)
      i = p.lastIndexOf('/')
    }
  }

  #ids(h: TarHeader): { uid: number; gid: number } | undefined {
    if (!this.#chown) return undefined
    const uid = this.#uidMap !== undefined ? mapId(h.uid, this.#uidMap) : h.uid
    const gid = this.#gidMap !== undefined ? mapId(h.gid, this.#gidMap) : h.gid
    if (uid === undefined || gid === undefined) {
      this.#warnOnce(
        `unmapped ${h.uid}:${h.gid}`,
        `layer entry ${quoteName(h.path)}: owner ${h.uid}:${h.gid} is outside the id mappings; ownership not applied (reported once per id pair)`,
      )
      return undefined
    }
    return { uid, gid }
  }

  /** lchown `host` (never followed) to the entry's (mapped) owner. */
  #own(host: string, h: TarHeader): void {
    const ids = this.#ids(h)
    if (ids === undefined) return
    try {
      lchownSync(host, ids.uid, ids.gid)
    } catch (e) {
      this.#chownFailed(e, h)
    }
  }

  #chownFailed(e: unknown, h: TarHeader): void {
    if (this.#rootless && (isErrno(e, 'EPERM') || isErrno(e, 'EINVAL'))) {
      this.#warnOnce(
        `chown ${h.uid}:${h.gid}`,
        `layer entry ${quoteName(h.path)}: cannot give ownership ${h.uid}:${h.gid} as an unprivileged user; not applied (reported once per id pair)`,
      )
      return
    }
    throw e
  }

  #warnOnce(key: string, msg: string): void {
    if (this.#warned.has(key)) return
    this.#warned.add(key)
    this.#warn(msg)
  }

  #annotate(err: unknown, path: string): unknown {
    if (isLadingError(err)) return err
    if (err instanceof Error && !err.message.startsWith('layer entry ')) {
      err.message = `layer entry ${quoteName(path)}: ${err.message}`
    }
    return err
  }
}

/** Writes the stored data of a sparse file into its regions, in order (holes stay unwritten). */
class SparseWriter {
  #fd: number
  #regions: SparseRegion[]
  #i = 0
  #at = 0

  constructor(fd: number, regions: SparseRegion[]) {
    this.#fd = fd
    this.#regions = regions
  }

  write(chunk: Buffer): void {
    let off = 0
    while (off < chunk.length) {
      while (this.#i < this.#regions.length && this.#at === this.#regions[this.#i]!.length) {
        this.#i++
        this.#at = 0
      }
      const r = this.#regions[this.#i]
      // The reader checked that the map accounts for exactly the stored bytes.
      if (r === undefined) throw new LadingError('INVALID_TAR', 'sparse data longer than its map')
      const k = Math.min(r.length - this.#at, chunk.length - off)
      let done = 0
      while (done < k) done += writeSync(this.#fd, chunk, off + done, k - done, r.offset + this.#at + done)
      this.#at += k
      off += k
    }
  }
}

function writeAll(fd: number, b: Buffer): void {
  let off = 0
  while (off < b.length) off += writeSync(fd, b, off, b.length - off)
}

function depth(rel: string): number {
  if (rel === '') return -1
  let n = 0
  for (let i = 0; i < rel.length; i++) if (rel.charCodeAt(i) === 47) n++
  return n
}

/** Give the owner rwx on every directory under `host` (not following symlinks), for removal. */
function openUpTree(host: string): void {
  const st = lstatSync(host)
  if (!st.isDirectory()) return
  if ((st.mode & 0o700) !== 0o700) chmodSync(host, (st.mode & 0o7777) | 0o700)
  for (const name of readdirSync(host)) openUpTree(`${host}/${name}`)
}
