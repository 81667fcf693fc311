/**
 * Path safety for applying untrusted layers: every name in a layer is resolved inside the root
 * directory as if the root were `/`, component by component, so that no entry can create, write,
 * chmod, chown, set xattrs on or delete anything outside the root.
 *
 * The rules (each has a named regression test in test/layer/path-safety.test.ts):
 * - `entryComponents`: a member name (or hardlink target, or whiteout) is cleaned lexically. An
 *   absolute name means the same path inside the root (the root is the container's `/`): GNU tar
 *   strips leading slashes by default, containerd joins names under `/`, and umoci itself writes an
 *   entry named `/` for `umoci insert SOURCE /`. A `..` that would climb above the root is REFUSED
 *   (UNSAFE_PATH) rather than clamped: layer generators never write such names, so a layer that has
 *   one is hostile or broken, and saying so beats silently writing somewhere the author did not mean.
 * - `RootResolver.resolveParent`: every component but the last is looked up with lstat inside the
 *   root. A symlink met on the way is followed only within the root: an absolute target restarts
 *   at the root (it means the container's `/`), a relative one continues from the symlink's
 *   directory. In 'refuse' mode (used by applyLayer) a `..` that climbs above the root while following
 *   a symlink is refused; in 'clamp' mode (securejoin/umoci semantics, used to read files such as
 *   /etc/passwd) it stays at the root. More than MAX_SYMLINK_HOPS symlinks -> UNSAFE_PATH (ELOOP).
 * - The final component is never followed: the caller replaces whatever is there (a symlink is
 *   removed and recreated, never written through), and opens with O_NOFOLLOW where it opens.
 *
 * The resolved path is only safe while nothing else changes the tree: applyLayer assumes it is
 * the only writer under the root while it runs (as umoci and GNU tar do).
 */
import { lstatSync, mkdirSync, readlinkSync } from 'node:fs'
import { LadingError, isErrno, quoteName } from '../errors.js'

/** Symlinks followed while resolving one path before giving up (Linux's own limit is 40). */
export const MAX_SYMLINK_HOPS = 40

function unsafe(entry: string, why: string): LadingError {
  return new LadingError('UNSAFE_PATH', `layer entry ${quoteName(entry)}: ${why}`)
}

/**
 * Clean a member name into path components relative to the root (`[]` is the root itself).
 * `.` and empty components are dropped (so leading slashes are: an absolute name is the same path
 * inside the root), `..` removes the previous component, and a `..` above the root is refused with
 * UNSAFE_PATH naming `entry`. `what` says which field it was.
 */
export function entryComponents(name: string, entry: string, what = 'name'): string[] {
  if (name.includes('\0')) throw unsafe(entry, `${what} contains a NUL byte`)
  const out: string[] = []
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue
    if (c === '..') {
      if (out.length === 0) throw unsafe(entry, `${what} ${quoteName(name)} climbs above the root`)
      out.pop()
      continue
    }
    out.push(c)
  }
  return out
}

export interface ResolvedPath {
  /** Canonical path relative to the root ('' is the root itself); its parents are real directories. */
  rel: string
  /** Absolute host path of `rel` (root + '/' + rel). */
  host: string
  /** Canonical relative path of the parent directory. */
  parentRel: string
  /** The final component ('' for the root itself). */
  name: string
}

export interface RootResolverOptions {
  /** 'refuse' (default): `..` above the root while following a symlink is UNSAFE_PATH; 'clamp': it stays at the root. */
  onEscape?: 'refuse' | 'clamp'
  /** Called after a missing directory is created on the way ('create' mode). */
  onCreateDir?: (rel: string, host: string) => void
  /** Creates a missing directory; defaults to mkdirSync(host, 0o755). */
  makeDir?: (host: string) => void
  /** Called when lstat inside `parentHost` fails with EACCES; return true to retry (rootless unpack). */
  onAccessDenied?: (parentHost: string, parentRel: string) => boolean
}

/**
 * Resolves layer paths inside one root, caching the directories it has proved to be real
 * directories (not symlinks). Callers that remove or replace a directory must call `forget`.
 */
export class RootResolver {
  readonly root: string
  #dirs = new Set<string>([''])
  #onEscape: 'refuse' | 'clamp'
  #opts: RootResolverOptions

  /** `root` must be an absolute, symlink-free path (use fs.realpathSync). */
  constructor(root: string, opts: RootResolverOptions = {}) {
    this.root = root.endsWith('/') && root.length > 1 ? root.slice(0, -1) : root
    this.#onEscape = opts.onEscape ?? 'refuse'
    this.#opts = opts
  }

  hostOf(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`
  }

  /** Record that `rel` is a real directory (the caller just made it). */
  noteDir(rel: string): void {
    this.#dirs.add(rel)
  }

  /** `rel` was removed or replaced: drop it and everything below it from the cache. */
  forget(rel: string): void {
    if (rel === '') {
      this.#dirs.clear()
      this.#dirs.add('')
      return
    }
    // Every cached directory's ancestors are cached too (the walk adds each component), so an
    // uncached `rel` has no cached descendants: skip the scan (whiteout-heavy layers).
    if (!this.#dirs.delete(rel)) return
    const prefix = `${rel}/`
    for (const d of this.#dirs) if (d.startsWith(prefix)) this.#dirs.delete(d)
  }

  /**
   * Resolve all components but the last (see the module comment). In 'create' mode missing
   * directories are made; a parent that exists and is not a directory is INVALID_TAR. In 'existing'
   * mode a missing or non-directory parent returns undefined (nothing there to act on).
   */
  resolveParent(components: readonly string[], entry: string, mode: 'create' | 'existing'): ResolvedPath | undefined {
    if (components.length === 0) return { rel: '', host: this.root, parentRel: '', name: '' }
    const name = components[components.length - 1]!
    // Fast path: the lexical parent is a directory we already proved real.
    const lexParent = components.length === 1 ? '' : components.slice(0, -1).join('/')
    if (this.#dirs.has(lexParent)) {
      const rel = lexParent === '' ? name : `${lexParent}/${name}`
      return { rel, host: `${this.root}/${rel}`, parentRel: lexParent, name }
    }
    const stack = this.#walk(components.slice(0, -1).reverse(), entry, mode)
    if (stack === undefined) return undefined
    const parentRel = stack.join('/')
    const rel = parentRel === '' ? name : `${parentRel}/${name}`
    return { rel, host: `${this.root}/${rel}`, parentRel, name }
  }

  /**
   * Resolve a whole path, following a symlink in the final component too (within the root).
   * For reading files inside a root (e.g. /etc/passwd). Missing components are kept literally, so
   * the result may not exist; nothing is created.
   */
  resolveFull(path: string, entry: string): ResolvedPath {
    const comps = path.split('/').reverse()
    const stack = this.#walk(comps, entry, 'existing', true) ?? []
    const rel = stack.join('/')
    return { rel, host: this.hostOf(rel), parentRel: stack.slice(0, -1).join('/'), name: stack[stack.length - 1] ?? '' }
  }

  /**
   * The walk: `queue` holds the components still to resolve, reversed (pop() gives the next one).
   * With `followLast` the final component is resolved like the others (it may be a non-directory).
   */
  #walk(queue: string[], entry: string, mode: 'create' | 'existing', followLast = false): string[] | undefined {
    const stack: string[] = []
    let hops = 0
    while (queue.length > 0) {
      const c = queue.pop()!
      if (c === '' || c === '.') continue
      if (c === '..') {
        if (stack.length === 0) {
          if (this.#onEscape === 'refuse') throw unsafe(entry, 'a symlink on its path climbs above the root')
          continue
        }
        stack.pop()
        continue
      }
      const parentRel = stack.join('/')
      const rel = parentRel === '' ? c : `${parentRel}/${c}`
      if (this.#dirs.has(rel)) {
        stack.push(c)
        continue
      }
      const host = `${this.root}/${rel}`
      let st
      try {
        st = lstatSync(host)
      } catch (e) {
        if (isErrno(e, 'EACCES') && this.#opts.onAccessDenied?.(this.hostOf(parentRel), parentRel)) {
          queue.push(c)
          continue
        }
        if (!isErrno(e, 'ENOENT') && !(followLast && isErrno(e, 'ENOTDIR'))) throw e
      }
      if (st === undefined) {
        // resolveFull: a missing component is taken literally (the result does not exist).
        if (followLast) {
          stack.push(c)
          continue
        }
        if (mode === 'existing') return undefined
        try {
          ;(this.#opts.makeDir ?? defaultMakeDir)(host)
        } catch (e) {
          if (isErrno(e, 'EACCES') && this.#opts.onAccessDenied?.(this.hostOf(parentRel), parentRel)) {
            queue.push(c)
            continue
          }
          throw e
        }
        this.#dirs.add(rel)
        this.#opts.onCreateDir?.(rel, host)
        stack.push(c)
        continue
      }
      if (st.isDirectory()) {
        this.#dirs.add(rel)
        stack.push(c)
        continue
      }
      if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) throw unsafe(entry, `too many levels of symbolic links (more than ${MAX_SYMLINK_HOPS}, a loop?) at ${quoteName(rel)}`)
        const target = readlinkSync(host, 'utf8')
        if (target.startsWith('/')) stack.length = 0
        const parts = target.split('/')
        for (let i = parts.length - 1; i >= 0; i--) queue.push(parts[i]!)
        continue
      }
      if (followLast) {
        stack.push(c)
        continue
      }
      if (mode === 'existing') return undefined
      throw new LadingError('INVALID_TAR', `layer entry ${quoteName(entry)}: parent ${quoteName(rel)} exists and is not a directory`)
    }
    return stack
  }
}

function defaultMakeDir(host: string): void {
  mkdirSync(host, 0o755)
}

/**
 * Resolve `unsafePath` inside `root` as if `root` were `/`, following every symlink (the final one
 * too) only within the root; `..` at the root stays at the root (securejoin semantics). Returns the
 * host path, which may not exist. For reading files of a rootfs, e.g. /etc/passwd for bundle config.
 * Throws UNSAFE_PATH on a symlink loop.
 */
export function resolveInRoot(root: string, unsafePath: string): string {
  return new RootResolver(root, { onEscape: 'clamp' }).resolveFull(unsafePath, unsafePath).host
}
