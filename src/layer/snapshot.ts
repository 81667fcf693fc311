/**
 * A snapshot is a compact record of a root filesystem's metadata, taken after unpack so that
 * repack can find what changed by comparing lstat results alone: a file whose type, size, mtime,
 * ctime, inode, mode, owner and link target are unchanged is not read at all. (umoci instead
 * re-walks with an mtree manifest and hashes every file.)
 *
 * ctime is the key to cheap, sound change detection: the kernel updates it on every content,
 * mode, owner, link-count and xattr change and user space cannot set it. So xattrs are re-read
 * only for entries whose ctime (or inode) moved, and a file whose ctime moved with nothing else
 * visibly different is treated as modified (content rewritten with the mtime put back).
 *
 * Entries are kept in walk order: depth first, each directory's children sorted by the bytes of
 * their names, parents before children; that is also the order layers are written in.
 *
 * Limits, stated: names that are not valid UTF-8 are refused (UNSUPPORTED) because Node's string
 * paths cannot round-trip them; xattrs in `system.*` (ACLs) and `security.selinux` are not
 * recorded (host policy, not image content); a filesystem that refuses listxattr yields none.
 */
import fs from 'node:fs'
import path from 'node:path'
import { xattrApi, type XattrApi } from './xattr.js'
import { LadingError, quoteName } from '../errors.js'
import { atomicWriteFile } from '../io/fs.js'

export type SnapshotEntryType = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket'

export interface SnapshotEntry {
  type: SnapshotEntryType
  /** Permission bits with setuid/setgid/sticky (0o7777). */
  mode: number
  uid: number
  gid: number
  /** Bytes for regular files; 0 for directories (their st_size is filesystem-specific noise). */
  size: number
  mtimeNs: bigint
  ctimeNs: bigint
  ino: bigint
  dev: bigint
  nlink: number
  /** Device numbers, for char and block devices. */
  devmajor?: number
  devminor?: number
  /** Symlink target. */
  link?: string
  /** Recorded extended attributes (see the module comment for what is left out). */
  xattrs?: Record<string, Buffer>
}

export interface Snapshot {
  /** The absolute root the snapshot was taken of (informational). */
  root: string
  /** Relative path ('' is the root itself) -> entry, in walk order. */
  entries: Map<string, SnapshotEntry>
}

let xattrModule: XattrApi | null | undefined
/** @napi-rs/xattr (shared with the unpack side); its l*xattr calls do not follow symlinks. */
function xattrApiOrNull(): XattrApi | null {
  if (xattrModule === undefined) {
    try {
      xattrModule = xattrApi()
    } catch {
      xattrModule = null
    }
  }
  return xattrModule
}

/** xattrs that describe the host rather than the image: ACLs (system.*) and SELinux labels. */
export function isRecordedXattr(name: string): boolean {
  return !name.startsWith('system.') && name !== 'security.selinux'
}

/** The recorded xattrs of `abs` (not following a symlink), or undefined for none / refused. */
export function readXattrs(abs: string): Record<string, Buffer> | undefined {
  const api = xattrApiOrNull()
  if (!api) return undefined
  let names: string[]
  try {
    names = api.listAttributesSync(abs)
  } catch {
    return undefined // filesystem without xattr support, or the entry vanished: record none
  }
  if (names.length === 0) return undefined
  let out: Record<string, Buffer> | undefined
  for (const name of names.sort()) {
    if (!isRecordedXattr(name)) continue
    let v: Buffer | null
    try {
      v = api.getAttributeSync(abs, name)
    } catch {
      continue
    }
    if (v === null) continue
    out ??= {}
    out[name] = Buffer.from(v)
  }
  return out
}

export function xattrsEqual(a: Record<string, Buffer> | undefined, b: Record<string, Buffer> | undefined): boolean {
  const ka = a ? Object.keys(a) : []
  const kb = b ? Object.keys(b) : []
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    const vb = b![k]
    if (vb === undefined || !a![k]!.equals(vb)) return false
  }
  return true
}

const S_IFMT = 0o170000n
function typeOf(mode: bigint): SnapshotEntryType {
  switch (mode & S_IFMT) {
    case 0o100000n:
      return 'file'
    case 0o040000n:
      return 'directory'
    case 0o120000n:
      return 'symlink'
    case 0o020000n:
      return 'char'
    case 0o060000n:
      return 'block'
    case 0o010000n:
      return 'fifo'
    default:
      return 'socket'
  }
}

/** Linux dev_t encoding (glibc gnu_dev_major/minor). */
function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn))
}
function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn))
}

/** Byte order of UTF-8 names (JS string comparison is UTF-16 order, which differs above U+FFFF). */
export function compareNames(a: string, b: string): number {
  if (/^[\x00-\x7f]*$/.test(a) && /^[\x00-\x7f]*$/.test(b)) return a < b ? -1 : a > b ? 1 : 0
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

function refuseNonUtf8(dir: string, name: string): void {
  if (!name.includes('\uFFFD')) return
  const raw = fs.readdirSync(dir, { encoding: 'buffer' })
  for (const r of raw) {
    if (r.toString('utf8') === name && !Buffer.from(name, 'utf8').equals(r)) {
      throw new LadingError('UNSUPPORTED', `${path.join(dir, name)}: file name is not valid UTF-8; Lading cannot archive it faithfully`)
    }
  }
}

function statEntry(abs: string, st: fs.BigIntStats): SnapshotEntry {
  const type = typeOf(st.mode)
  const e: SnapshotEntry = {
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === 'file' ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    dev: st.dev,
    nlink: Number(st.nlink),
  }
  if (type === 'char' || type === 'block') {
    e.devmajor = devMajor(st.rdev)
    e.devminor = devMinor(st.rdev)
  }
  if (type === 'symlink') {
    const link = fs.readlinkSync(abs)
    if (link.includes('\uFFFD') && !Buffer.from(link, 'utf8').equals(fs.readlinkSync(abs, { encoding: 'buffer' }))) {
      throw new LadingError('UNSUPPORTED', `${abs}: symlink target is not valid UTF-8; Lading cannot archive it faithfully`)
    }
    e.link = link
  }
  return e
}

/** Record one path (lstat, not following a symlink), with its xattrs. */
export function statPath(abs: string): SnapshotEntry {
  const e = statEntry(abs, fs.lstatSync(abs, { bigint: true }))
  const x = readXattrs(abs)
  if (x) e.xattrs = x
  return e
}

export interface ScanOptions {
  /** Relative paths to leave out, with everything below them. */
  exclude?: (rel: string) => boolean
  /**
   * An earlier snapshot of the same tree: xattrs of entries whose inode, device and ctime are
   * unchanged are copied from it instead of being read again (an xattr change moves ctime).
   */
  previous?: Snapshot
  /**
   * Paths the caller vouches have not changed since `previous` (nothing was written there): an
   * entry of `previous` for which this returns true is taken as it is, with everything below it
   * for a directory, without touching the disk. Paths absent from `previous` are read as usual.
   */
  unchanged?: (rel: string) => boolean
}

/**
 * Walk `root` lazily, yielding [relative path, entry] in walk order ('' first). One lstat per
 * entry, synchronously: a hot loop where sync calls measurably beat thread-pool round trips.
 * Being lazy lets a consumer (tarDirectory) start archiving while the walk goes on.
 */
export function* walkTree(root: string, opts: ScanOptions = {}): Generator<[string, SnapshotEntry]> {
  const absRoot = path.resolve(root)
  const prev = opts.previous?.entries
  const record = (rel: string, abs: string, st: fs.BigIntStats): SnapshotEntry => {
    const e = statEntry(abs, st)
    const before = prev?.get(rel)
    const x = before && before.ino === e.ino && before.dev === e.dev && before.ctimeNs === e.ctimeNs ? before.xattrs : readXattrs(abs)
    if (x) e.xattrs = x
    return e
  }
  let rootStat: fs.BigIntStats
  try {
    rootStat = fs.lstatSync(absRoot, { bigint: true })
  } catch (e) {
    throw new LadingError('NOT_FOUND', `${absRoot}: cannot read the root directory: ${(e as Error).message}`, { cause: e })
  }
  if (!rootStat.isDirectory()) throw new LadingError('USAGE', `${absRoot}: not a directory`)
  yield ['', record('', absRoot, rootStat)]
  // For `unchanged`: the previous entries in walk order, where a directory's subtree is the run of
  // entries right after it whose paths start with its own and a '/'.
  const unchanged = prev && opts.unchanged
  let prevOrder: Array<[string, SnapshotEntry]> | undefined
  let prevIndex: Map<string, number> | undefined
  function* previousSubtree(rel: string): Generator<[string, SnapshotEntry]> {
    prevOrder ??= [...prev!]
    if (!prevIndex) {
      prevIndex = new Map()
      for (let i = 0; i < prevOrder.length; i++) prevIndex.set(prevOrder[i]![0], i)
    }
    const below = `${rel}/`
    for (let i = prevIndex.get(rel)! + 1; i < prevOrder.length && prevOrder[i]![0].startsWith(below); i++) {
      const item = prevOrder[i]!
      if (!opts.exclude?.(item[0])) yield item
    }
  }
  function* walk(dirAbs: string, dirRel: string): Generator<[string, SnapshotEntry]> {
    const names = fs.readdirSync(dirAbs)
    names.sort(compareNames)
    for (const name of names) {
      refuseNonUtf8(dirAbs, name)
      const rel = dirRel === '' ? name : `${dirRel}/${name}`
      if (opts.exclude?.(rel)) continue
      const kept = unchanged && unchanged(rel) ? prev.get(rel) : undefined
      if (kept) {
        yield [rel, kept]
        if (kept.type === 'directory') yield* previousSubtree(rel)
        continue
      }
      const abs = `${dirAbs}/${name}`
      let st: fs.BigIntStats
      try {
        st = fs.lstatSync(abs, { bigint: true })
      } catch (e) {
        throw new LadingError('CONFLICT', `${abs}: vanished while the tree was being read`, { cause: e })
      }
      const e = record(rel, abs, st)
      yield [rel, e]
      if (e.type === 'directory') yield* walk(abs, rel)
    }
  }
  yield* walk(absRoot, '')
}

/** Walk `root` and record all of it (see walkTree). The root must be a directory (a symlink is refused). */
export function scanTree(root: string, opts: ScanOptions = {}): Snapshot {
  const entries = new Map<string, SnapshotEntry>()
  for (const [rel, e] of walkTree(root, opts)) entries.set(rel, e)
  return { root: path.resolve(root), entries }
}

/** Record the tree at `root` (see scanTree). */
export async function takeSnapshot(root: string, opts: ScanOptions = {}): Promise<Snapshot> {
  return scanTree(root, opts)
}

const FORMAT = 'lading-snapshot'
const VERSION = 1

/**
 * JSON lines: a header object, then one array per entry:
 * [path, type, mode, uid, gid, size, mtimeNs, ctimeNs, ino, dev, nlink, devmajor|null, devminor|null,
 *  link|null, {xattr: base64}|null]; bigints as decimal strings. Written atomically.
 */
export async function saveSnapshot(s: Snapshot, file: string): Promise<void> {
  const lines: string[] = [JSON.stringify({ format: FORMAT, version: VERSION, root: s.root, count: s.entries.size })]
  for (const [p, e] of s.entries) {
    let x: Record<string, string> | null = null
    if (e.xattrs) {
      x = {}
      for (const [k, v] of Object.entries(e.xattrs)) x[k] = v.toString('base64')
    }
    lines.push(
      JSON.stringify([
        p,
        e.type,
        e.mode,
        e.uid,
        e.gid,
        e.size,
        e.mtimeNs.toString(),
        e.ctimeNs.toString(),
        e.ino.toString(),
        e.dev.toString(),
        e.nlink,
        e.devmajor ?? null,
        e.devminor ?? null,
        e.link ?? null,
        x,
      ]),
    )
  }
  await atomicWriteFile(file, lines.join('\n') + '\n', 0o600)
}

const TYPES = new Set<string>(['file', 'directory', 'symlink', 'char', 'block', 'fifo', 'socket'])
const BIGINT_RE = /^-?\d{1,30}$/

/** Read a snapshot written by saveSnapshot; INVALID_DOCUMENT naming the line on anything malformed. */
export async function loadSnapshot(file: string): Promise<Snapshot> {
  let text: string
  try {
    text = await fs.promises.readFile(file, 'utf8')
  } catch (e) {
    throw new LadingError('NOT_FOUND', `${file}: cannot read snapshot: ${(e as Error).message}`, { cause: e })
  }
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  const bad = (n: number, why: string): LadingError => new LadingError('INVALID_DOCUMENT', `${file}: line ${n}: ${why}`)
  let header: unknown
  try {
    header = JSON.parse(lines[0] ?? '')
  } catch (e) {
    throw bad(1, `not JSON (${(e as Error).message})`)
  }
  const h = header as { format?: unknown; version?: unknown; root?: unknown; count?: unknown }
  if (typeof header !== 'object' || header === null || h.format !== FORMAT) throw bad(1, 'not a Lading snapshot')
  if (h.version !== VERSION) throw bad(1, `unsupported snapshot version ${quoteName(h.version)}`)
  if (typeof h.root !== 'string' || typeof h.count !== 'number') throw bad(1, 'missing root or count')
  if (lines.length - 1 !== h.count) throw bad(1, `expected ${h.count} entries, found ${lines.length - 1} (truncated?)`)
  const entries = new Map<string, SnapshotEntry>()
  const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
  const big = (v: unknown, n: number, what: string): bigint => {
    if (typeof v !== 'string' || !BIGINT_RE.test(v)) throw bad(n, `${what} must be a decimal string`)
    return BigInt(v)
  }
  for (let i = 1; i < lines.length; i++) {
    const n = i + 1
    let row: unknown
    try {
      row = JSON.parse(lines[i]!)
    } catch (e) {
      throw bad(n, `not JSON (${(e as Error).message})`)
    }
    if (!Array.isArray(row) || row.length !== 15) throw bad(n, 'entry must be an array of 15 fields')
    const [p, type, mode, uid, gid, size, mtime, ctime, ino, dev, nlink, dmaj, dmin, link, x] = row as unknown[]
    if (typeof p !== 'string' || (p !== '' && (p.startsWith('/') || p.split('/').some((c) => c === '' || c === '.' || c === '..'))))
      throw bad(n, 'invalid path')
    if (typeof type !== 'string' || !TYPES.has(type)) throw bad(n, 'invalid type')
    if (!isU32(mode) || mode > 0o7777 || !isU32(uid) || !isU32(gid) || !isU32(size) || !isU32(nlink)) throw bad(n, 'invalid numeric field')
    const e: SnapshotEntry = {
      type: type as SnapshotEntryType,
      mode,
      uid,
      gid,
      size,
      mtimeNs: big(mtime, n, 'mtime'),
      ctimeNs: big(ctime, n, 'ctime'),
      ino: big(ino, n, 'ino'),
      dev: big(dev, n, 'dev'),
      nlink,
    }
    if (dmaj !== null || dmin !== null) {
      if (!isU32(dmaj) || !isU32(dmin)) throw bad(n, 'invalid device numbers')
      e.devmajor = dmaj
      e.devminor = dmin
    }
    if (link !== null) {
      if (typeof link !== 'string') throw bad(n, 'invalid link target')
      e.link = link
    }
    if (x !== null) {
      if (typeof x !== 'object' || Array.isArray(x)) throw bad(n, 'invalid xattrs')
      const xs: Record<string, Buffer> = {}
      for (const [k, v] of Object.entries(x as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(n, `invalid xattr value for ${k}`)
        xs[k] = Buffer.from(v, 'base64')
      }
      e.xattrs = xs
    }
    if (entries.has(p)) throw bad(n, `duplicate path ${quoteName(p)}`)
    entries.set(p, e)
  }
  return { root: h.root, entries }
}
