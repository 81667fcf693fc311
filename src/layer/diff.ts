/**
 * The changeset between a recorded snapshot and a root filesystem now, as a layer tar
 * (image-spec layer.md §Changesets, §Whiteouts):
 *  - added and modified entries are written whole: a modified file is re-added with all its
 *    content, and so is a file whose only change is metadata (mode, owner, xattrs), because a
 *    layer entry replaces the lower entry entirely (§Changesets "Modifications");
 *  - a type change (file <-> directory <-> symlink ...) is the new entry; appliers replace the old
 *    one (a directory replaced by a file takes its children with it);
 *  - a deleted path becomes `.wh.NAME` in its parent; a deleted directory is ONE whiteout, its
 *    children are not listed (they go with it);
 *  - hardlinks: paths sharing an inode are written once and linked (type '1') within the layer;
 *    if any path of a hardlinked inode changed, all its current paths are re-added so the link
 *    survives in the new layer.
 * No file whose metadata is unchanged is read or hashed (see snapshot.ts for why ctime makes that
 * sound). Masked paths are neither added nor whited out. The root directory itself is never an
 * entry. Entry order is the walk order, each directory's whiteouts right after the directory.
 */
import type { Readable } from 'node:stream'
import { LadingError } from '../errors.js'
import { compareNames, scanTree, xattrsEqual, type Snapshot, type SnapshotEntry } from './snapshot.js'
import { normalizePrefix, toTarSources, type SourceItem, type WhiteoutItem } from './tar-directory.js'
import { resolveMtimeClamp, writeTar, type TarSource, type TarWriteOptions } from './tar-writer.js'

export interface Change {
  path: string
  kind: 'added' | 'modified' | 'deleted' | 'metadata'
}

export interface DiffOptions {
  /** Paths inside the root (absolute as seen in the container, or relative) to ignore entirely. */
  maskPaths?: string[]
  /** No mtime later than this; default SOURCE_DATE_EPOCH when set. */
  mtimeClamp?: Date
  /** Keep sub-second mtimes (pax records). */
  subsecondMtimes?: boolean
  /**
   * Only these paths (relative to the root, without symlinks among their components) and what is
   * below them can have changed since `before`, besides their ancestors (which may have been
   * created, or have new children): the caller vouches for it (`lading build`'s COPY wrote
   * nothing else). The rest of the tree is taken from `before` without being read again; the
   * changeset is the one a whole walk would find. '' (the root) means the whole tree.
   */
  scope?: string[]
}

export interface DiffResult {
  /** The uncompressed changeset tar (an empty archive when nothing changed). */
  stream: Readable
  /** Settles once the tree has been compared, before the stream needs to be read. */
  changes: Promise<Change[]>
  /** The tree as it is now (for refreshing the saved snapshot after a repack). */
  snapshot: Promise<Snapshot>
}

function kindOf(b: SnapshotEntry | undefined, n: SnapshotEntry): Change['kind'] | undefined {
  if (!b) return 'added'
  if (b.type !== n.type || b.ino !== n.ino || b.dev !== n.dev) return 'modified'
  const metadata = b.mode !== n.mode || b.uid !== n.uid || b.gid !== n.gid || !xattrsEqual(b.xattrs, n.xattrs)
  if (n.type === 'directory') return metadata || b.mtimeNs !== n.mtimeNs ? 'metadata' : undefined
  if (b.size !== n.size || b.mtimeNs !== n.mtimeNs || b.link !== n.link || b.devmajor !== n.devmajor || b.devminor !== n.devminor) return 'modified'
  if (metadata) return 'metadata'
  // A regular file whose ctime moved with nothing else visibly different may have had its
  // content rewritten and its mtime put back: re-add it rather than risk missing a change.
  if (n.type === 'file' && b.ctimeNs !== n.ctimeNs) return 'modified'
  if (b.nlink !== n.nlink && n.type !== 'file') return 'modified'
  return undefined
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/')
  return i < 0 ? '' : rel.slice(0, i)
}

/** For DiffOptions.scope: true for the paths outside every scope that are not an ancestor of one. */
function scopeFilter(scope: string[] | undefined): ((rel: string) => boolean) | undefined {
  if (scope === undefined) return undefined
  const roots = scope.map((p) => normalizePrefix(p))
  if (roots.includes('')) return undefined
  const ancestors = new Set<string>()
  for (const r of roots) for (let i = r.indexOf('/'); i > 0; i = r.indexOf('/', i + 1)) ancestors.add(r.slice(0, i))
  return (rel) => !ancestors.has(rel) && !roots.some((r) => rel === r || rel.startsWith(`${r}/`))
}

interface Plan {
  items: Array<SourceItem | WhiteoutItem>
  changes: Change[]
  now: Snapshot
}

function makePlan(root: string, before: Snapshot, opts: DiffOptions): Plan {
  const masks = (opts.maskPaths ?? []).map((m) => normalizePrefix(m)).filter((m) => m !== '')
  const exclude = masks.length === 0 ? undefined : (rel: string): boolean => masks.some((m) => rel === m || rel.startsWith(`${m}/`))
  const unchanged = scopeFilter(opts.scope)
  const now = scanTree(root, { previous: before, ...(exclude ? { exclude } : {}), ...(unchanged ? { unchanged } : {}) })
  const kinds = new Map<string, Change['kind']>()
  for (const [rel, n] of now.entries) {
    // Sockets cannot be in a layer (tar has no type for them); they are neither added nor removed.
    if (rel === '' || n.type === 'socket') continue
    const k = kindOf(before.entries.get(rel), n)
    if (k) kinds.set(rel, k)
  }
  // Keep hardlinks intact: a changed member of a link group brings every current member along.
  const groups = new Map<string, string[]>()
  for (const [rel, n] of now.entries) {
    if (rel === '' || n.type === 'directory' || n.nlink < 2) continue
    const key = `${n.dev}:${n.ino}`
    const g = groups.get(key)
    if (g) g.push(rel)
    else groups.set(key, [rel])
  }
  for (const members of groups.values()) {
    if (members.length > 1 && members.some((m) => kinds.has(m))) for (const m of members) if (!kinds.has(m)) kinds.set(m, 'modified')
  }
  // Deletions: one whiteout per deleted path whose parent still exists as a directory; anything
  // deeper goes with its deleted (or replaced) ancestor.
  const whiteouts = new Map<string, string[]>()
  const deleted: Change[] = []
  for (const [rel, b] of before.entries) {
    if (rel === '' || b.type === 'socket' || now.entries.has(rel) || exclude?.(rel)) continue
    const parent = parentOf(rel)
    const p = now.entries.get(parent)
    if (!p || p.type !== 'directory') continue
    const list = whiteouts.get(parent)
    if (list) list.push(rel)
    else whiteouts.set(parent, [rel])
  }
  const items: Array<SourceItem | WhiteoutItem> = []
  const changes: Change[] = []
  for (const [rel, n] of now.entries) {
    const k = kinds.get(rel)
    if (k) {
      items.push({ rel, entry: n })
      changes.push({ path: rel, kind: k })
    }
    const wh = whiteouts.get(rel)
    if (wh) {
      wh.sort((a, b) => compareNames(a, b))
      for (const w of wh) {
        items.push({ whiteout: w })
        deleted.push({ path: w, kind: 'deleted' })
      }
    }
  }
  return { items, changes: changes.concat(deleted), now }
}

/**
 * Compare `root` with `before` and stream the changeset as an uncompressed tar. The comparison
 * starts at once (on the next turn of the event loop), so `changes` can be awaited first and the
 * stream discarded when it is empty ("no change means no new layer").
 */
export function diffLayer(root: string, before: Snapshot, opts: DiffOptions = {}): DiffResult {
  const plan = new Promise<Plan>((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(makePlan(root, before, opts))
      } catch (e) {
        reject(e instanceof LadingError ? e : new LadingError('CONFLICT', `${root}: cannot compare with the snapshot: ${(e as Error).message}`, { cause: e }))
      }
    })
  })
  const writeOpts: TarWriteOptions = {}
  const clamp = resolveMtimeClamp(opts.mtimeClamp)
  if (clamp !== undefined) writeOpts.mtimeClampNs = clamp
  if (opts.subsecondMtimes) writeOpts.subsecondMtimes = true
  async function* sources(): AsyncGenerator<TarSource> {
    const p = await plan
    yield* toTarSources(p.now.root, p.items)
  }
  const changes = plan.then((p) => p.changes)
  const snapshot = plan.then((p) => p.now)
  // Callers may read only one of these; the others must not become unhandled rejections.
  changes.catch(() => {})
  snapshot.catch(() => {})
  return { stream: writeTar(sources(), writeOpts), changes, snapshot }
}
