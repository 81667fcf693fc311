/**
 * The sources of COPY and ADD: paths in the build context (or in an earlier stage's root
 * filesystem) matched by the instruction's patterns, and what they become in the image.
 *
 * Safety (the context and the Dockerfile are untrusted):
 *  - a pattern is cleaned lexically first; one that climbs out of the root (`../x`) is refused
 *    (UNSAFE_PATH), as Docker refuses paths outside the build context;
 *  - the matched path itself is resolved with symlinks followed only inside the root
 *    (layer/path-safety.ts resolveInRoot: `/` and `..` stay at the root), so a symlink in the
 *    context cannot reach a host file; symlinks below a copied directory are copied as symlinks;
 *  - paths excluded by .dockerignore are not sources.
 * Docker's directory semantics (the Dockerfile reference §COPY): a directory source copies its
 * contents, not itself; several sources or a wildcard need a destination ending in `/`; a file
 * copied to a destination ending in `/` (or to an existing directory) keeps its name.
 */
import fs from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { digestOf } from '../digest/digest.js'
import { VerifyingStream } from '../digest/verify.js'
import { LadingError, isErrno } from '../errors.js'
import { resolveInRoot } from '../layer/path-safety.js'
import { statPath, walkTree, type SnapshotEntry } from '../layer/snapshot.js'
import { IgnoreRules, globToRegExp, hasGlob } from './dockerignore.js'

/** One path to copy: where it is read from and where it goes (relative to the destination). */
export interface CopyItem {
  /** Path below the destination ('' = the destination itself). */
  rel: string
  entry: SnapshotEntry
  /** Host path of the content (regular files). */
  host: string
}

export interface SourceRoot {
  /** Absolute, symlink-free host path of the root (the context, or a stage's rootfs). */
  dir: string
  /** How to name it in messages ("the build context", "stage build"). */
  what: string
  ignore?: IgnoreRules
}

/** Clean a source pattern relative to the root; UNSAFE_PATH when it climbs above it. */
export function cleanSourcePath(p: string, what: string): string {
  const out: string[] = []
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue
    if (c === '..') {
      if (out.length === 0) throw new LadingError('UNSAFE_PATH', `${JSON.stringify(p)} is outside ${what}`)
      out.pop()
      continue
    }
    out.push(c)
  }
  return out.join('/')
}

/** Matches of one pattern: rel paths inside the root (a pattern without magic is itself). */
function matchPattern(root: SourceRoot, pattern: string): string[] {
  const comps = pattern === '' ? [] : pattern.split('/')
  let candidates = ['']
  for (const comp of comps) {
    const next: string[] = []
    for (const c of candidates) {
      const rel = c === '' ? comp : `${c}/${comp}`
      if (!hasGlob(comp)) { next.push(rel); continue }
      const re = globToRegExp(comp, false)
      let names: string[]
      try { names = fs.readdirSync(resolveInRoot(root.dir, c)) } catch { continue }
      for (const n of names.sort()) if (re.test(n)) next.push(c === '' ? n : `${c}/${n}`)
    }
    candidates = next
  }
  return candidates
}

export interface ResolvedSource {
  /** The pattern as given (for messages). */
  pattern: string
  /** The matched path, relative to the root. */
  rel: string
  /** Host path (symlinks resolved inside the root). */
  host: string
  entry: SnapshotEntry
}

/** Resolve the source patterns of one instruction; NOT_FOUND for a missing or ignored source. */
export function resolveSources(root: SourceRoot, patterns: string[]): { sources: ResolvedSource[]; wildcard: boolean } {
  const sources: ResolvedSource[] = []
  let wildcard = false
  for (const p of patterns) {
    const clean = cleanSourcePath(p, root.what)
    const glob = hasGlob(clean)
    wildcard ||= glob
    let matched = matchPattern(root, clean)
    if (root.ignore) matched = matched.filter((m) => m === '' || !root.ignore!.ignores(m))
    if (matched.length === 0 && glob) throw new LadingError('NOT_FOUND', `${JSON.stringify(p)}: no file in ${root.what} matches`)
    for (const rel of matched) {
      const host = resolveInRoot(root.dir, rel)
      let entry: SnapshotEntry
      try {
        entry = statPath(host)
      } catch (e) {
        if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR') || (e instanceof LadingError)) {
          throw new LadingError('NOT_FOUND', `${JSON.stringify(p)}: no such file or directory in ${root.what}`)
        }
        throw e
      }
      sources.push({ pattern: p, rel, host, entry })
    }
  }
  return { sources, wildcard }
}

/**
 * The items a source contributes: a directory's contents (not the directory itself, whose own
 * entry is returned with rel '' for callers that create the destination from it), or the single
 * file. Ignored paths below a directory are left out.
 */
export function itemsOf(root: SourceRoot, src: ResolvedSource): CopyItem[] {
  if (src.entry.type !== 'directory') return [{ rel: '', entry: src.entry, host: src.host }]
  const ignore = root.ignore
  const base = src.rel
  const ignored = (rel: string): boolean => ignore !== undefined && ignore.ignores(base === '' ? rel : `${base}/${rel}`)
  const items: CopyItem[] = []
  // Without exception patterns an ignored directory can be pruned whole.
  const prune = ignore !== undefined && !ignore.hasExceptions
  for (const [rel, entry] of walkTree(src.host, prune ? { exclude: ignored } : {})) {
    items.push({ rel, entry, host: rel === '' ? src.host : `${src.host}/${rel}` })
  }
  if (!ignore || prune) return items
  // With exceptions: keep what is not ignored, and the directories above anything kept.
  const keep = new Set<string>([''])
  for (const it of items) {
    if (it.rel === '' || ignored(it.rel)) continue
    keep.add(it.rel)
    for (let i = it.rel.lastIndexOf('/'); i > 0; i = it.rel.lastIndexOf('/', i - 1)) keep.add(it.rel.slice(0, i))
  }
  return items.filter((it) => keep.has(it.rel))
}

/**
 * A digest of what is copied: paths, types, modes, owners, sizes, link targets and file contents
 * (not times: Docker's cache ignores them too). Part of the step's cache key.
 */
export async function contentDigest(groups: Array<{ dest: string; items: CopyItem[] }>): Promise<string> {
  const lines: string[] = []
  let n = 0
  for (const g of groups) {
    for (const it of g.items) {
      // Let other work (an unpack started ahead, see builder.ts) run between files.
      if (++n % 64 === 0) await new Promise<void>((resolve) => setImmediate(resolve))
      const e = it.entry
      let content = ''
      if (e.type === 'file') content = await fileDigest(it.host, e.size)
      lines.push(JSON.stringify([g.dest, it.rel, e.type, e.mode, e.uid, e.gid, e.size, e.link ?? '', content]))
    }
  }
  return digestOf(lines.join('\n'))
}

const WHOLE_FILE_MAX = 8 * 1024 * 1024

/** The sha256 of a file's content: read whole when small, streamed otherwise. */
export async function fileDigest(file: string, size: number): Promise<string> {
  if (size <= WHOLE_FILE_MAX) return digestOf(fs.readFileSync(file))
  const v = new VerifyingStream({ name: file })
  v.resume()
  await pipeline(fs.createReadStream(file), v)
  return v.result!.digest
}
