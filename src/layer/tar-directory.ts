/**
 * A whole directory tree as a layer tar: the base layer of a fresh rootfs, or the content of
 * `lading insert`. Also the shared step from recorded entries to tar sources used by diff.ts.
 *
 * Order is the snapshot walk order (depth first, names sorted by bytes, parents first).
 * Hardlinks (same device and inode, seen more than once) become type '1' entries pointing at the
 * first path written. Sockets cannot be represented in tar and are skipped. A file whose name is
 * a whiteout (`.wh.*`, image-spec layer.md §Whiteouts reserves the prefix) is refused: written
 * into a layer it would delete something instead of being a file.
 */
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { LadingError, quoteName } from '../errors.js'
import { isWhiteoutName, whiteoutNameFor } from './tar-constants.js'
import { statPath, walkTree, type SnapshotEntry } from './snapshot.js'
import { resolveMtimeClamp, writeTar, type TarEntry, type TarSource, type TarWriteOptions } from './tar-writer.js'

/** Normalise a layer path prefix ("/opt/app/" -> "opt/app"); USAGE error on `..` or empty components. */
export function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined) return ''
  const parts = prefix.split('/').filter((c) => c !== '' && c !== '.')
  if (parts.some((c) => c === '..')) throw new LadingError('USAGE', `layer path ${quoteName(prefix)} must not contain '..'`)
  return parts.join('/')
}

function join(prefix: string, rel: string): string {
  return prefix === '' ? rel : rel === '' ? prefix : `${prefix}/${rel}`
}

function baseName(rel: string): string {
  const i = rel.lastIndexOf('/')
  return i < 0 ? rel : rel.slice(i + 1)
}

export interface SourceItem {
  /** Path relative to the scanned root ('' = the root itself). */
  rel: string
  entry: SnapshotEntry
}
/** A whiteout to emit at this point: `rel` is the path removed (its `.wh.` marker is derived). */
export interface WhiteoutItem {
  whiteout: string
}

/**
 * Turn recorded entries (in order) into tar sources whose content is read from `root`.
 * `prefix` is prepended to every tar path. Sockets are skipped.
 */
export function* toTarSources(root: string, items: Iterable<SourceItem | WhiteoutItem>, prefix = ''): Generator<TarSource> {
  const firstPathOfInode = new Map<string, string>()
  for (const item of items) {
    if ('whiteout' in item) {
      // image-spec layer.md §Whiteouts: an empty regular file `.wh.NAME` beside NAME.
      const dir = item.whiteout.includes('/') ? item.whiteout.slice(0, item.whiteout.lastIndexOf('/')) : ''
      const wh = join(prefix, join(dir, whiteoutNameFor(baseName(item.whiteout))))
      yield { entry: { path: wh, type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n } }
      continue
    }
    const { rel, entry: e } = item
    if (e.type === 'socket') continue
    const tarPath = join(prefix, rel)
    if (tarPath === '') continue
    if (isWhiteoutName(baseName(rel))) {
      throw new LadingError(
        'UNSUPPORTED',
        `${path.join(root, rel)}: a file named like a whiteout (.wh.*) cannot be stored in a layer (image-spec layer.md §Whiteouts)`,
      )
    }
    const base: Omit<TarEntry, 'type'> = { path: tarPath, mode: e.mode, uid: e.uid, gid: e.gid, mtimeNs: e.mtimeNs }
    if (e.xattrs) base.xattrs = e.xattrs
    if (e.type !== 'directory' && e.nlink > 1) {
      const key = `${e.dev}:${e.ino}`
      const first = firstPathOfInode.get(key)
      if (first !== undefined) {
        yield { entry: { ...base, type: 'hardlink', linkname: first } }
        continue
      }
      firstPathOfInode.set(key, tarPath)
    }
    switch (e.type) {
      case 'file':
        yield { entry: { ...base, type: 'file', size: e.size }, content: { file: rel === '' ? root : `${root}/${rel}` } }
        break
      case 'directory':
        yield { entry: { ...base, type: 'directory' } }
        break
      case 'symlink':
        yield { entry: { ...base, type: 'symlink', linkname: e.link ?? '' } }
        break
      case 'char':
      case 'block':
        yield { entry: { ...base, type: e.type, devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 } }
        break
      case 'fifo':
        yield { entry: { ...base, type: 'fifo' } }
        break
    }
  }
}

export interface TarDirectoryOptions {
  /** Put everything under this layer path; the directory itself becomes that entry. */
  prefix?: string
  /** No mtime later than this; default SOURCE_DATE_EPOCH when set. */
  mtimeClamp?: Date
  /** Keep sub-second mtimes (pax records). */
  subsecondMtimes?: boolean
  /** Relative paths to leave out (with their subtrees). */
  exclude?: (rel: string) => boolean
}

/**
 * A whole directory (or, with a prefix, a single file or symlink) as an uncompressed layer tar.
 * Without a prefix the root directory itself is not an entry (a base layer's `/` is the
 * runtime's). The tree is read when the stream is first read; errors surface on the stream.
 */
export function tarDirectory(dir: string, opts: TarDirectoryOptions = {}): Readable {
  const prefix = normalizePrefix(opts.prefix)
  const root = path.resolve(dir)
  const writeOpts: TarWriteOptions = {}
  const clamp = resolveMtimeClamp(opts.mtimeClamp)
  if (clamp !== undefined) writeOpts.mtimeClampNs = clamp
  if (opts.subsecondMtimes) writeOpts.subsecondMtimes = true
  function* sources(): Generator<TarSource> {
    const st = fs.lstatSync(root, { bigint: true })
    if (!st.isDirectory()) {
      if (prefix === '') throw new LadingError('USAGE', `${root}: not a directory (a single file needs a target path)`)
      // A single non-directory, stored at exactly `prefix`.
      if (isWhiteoutName(baseName(prefix)))
        throw new LadingError('UNSUPPORTED', `layer path ${quoteName(prefix)} is a whiteout name (image-spec layer.md §Whiteouts)`)
      const entry = { ...statPath(root), nlink: 1 }
      for (const s of toTarSources(path.dirname(root), [{ rel: path.basename(root), entry }])) yield { ...s, entry: { ...s.entry, path: prefix } }
      return
    }
    // Lazily: archiving (and compressing downstream) starts while the walk is still going.
    function* items(): Generator<SourceItem> {
      for (const [rel, entry] of walkTree(root, opts.exclude ? { exclude: opts.exclude } : {})) {
        if (rel === '' && prefix === '') continue
        yield { rel, entry }
      }
    }
    yield* toTarSources(root, items(), prefix)
  }
  return writeTar(sources(), writeOpts)
}
