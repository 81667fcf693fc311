/**
 * The tar writer for layers: POSIX ustar headers, with a pax extended header ('x') in front of an
 * entry only when ustar cannot say something (IEEE Std 1003.1 pax §pax Interchange Format):
 *  - a path that does not fit ustar's name (100 bytes) / prefix (155 bytes) split,
 *  - a link name longer than 100 bytes,
 *  - a size of 8 GiB or more, a uid/gid above 2097151 (7 octal digits), an mtime outside the
 *    11-digit octal range (including before 1970),
 *  - sub-second mtimes (only when asked: they make layers less reproducible),
 *  - extended attributes, as `SCHILY.xattr.<name>` (the keys GNU tar, star, Go and umoci use).
 * Ownership is numeric only (uname/gname are left empty) so a layer never depends on the
 * builder's /etc/passwd. mtimes are clamped to `mtimeClamp` (SOURCE_DATE_EPOCH semantics:
 * nothing newer than the clamp) for reproducible layers.
 *
 * Hand-written rather than tar-stream because tar-stream's pack() cannot take SCHILY.xattr.* pax
 * records with binary values (it writes pax only for long names and its own fields), fills in
 * uname/gname defaults, and stamps its pax headers with the current time, so its output is
 * neither complete for layers nor byte-for-byte reproducible.
 *
 * Header blocks and pax records are encoded by the shared codec (tar-header.ts); this module
 * decides what goes where. Header encoding is pure (encodeEntryHeader); writeTar() streams
 * entries and file contents in the order given, reading each file exactly once and refusing a
 * file whose size changed since it was recorded (the header already promised a size).
 */
import { constants as fsc } from 'node:fs'
import fs from 'node:fs'
import { Readable } from 'node:stream'
import { LadingError, quoteName } from '../errors.js'
import { MAX_OCTAL_ID, MAX_OCTAL_SIZE, PaxKey, TypeFlag } from './tar-constants.js'
import { encodeUstarHeader, END_OF_ARCHIVE, padding, paxRecord, splitUstarName } from './tar-header.js'
import { POOL_BLOCK_SIZE, takeBlock } from '../io/block-pool.js'
import { DEFAULT_SMALL_FILE_MAX, type TarEntry as ReadTarEntry, type TarEntryType as ReadTarEntryType, type TarHeader } from './tar-reader.js'

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo'

export interface TarEntry {
  /** Relative, '/'-separated, without a leading '/' or './'; directories without the trailing '/' (added here). */
  path: string
  type: TarEntryType
  /** Permission bits including setuid, setgid and sticky (0o7777). */
  mode: number
  uid: number
  gid: number
  /** Content length; regular files only (0 for everything else). */
  size?: number
  /** Modification time in nanoseconds since the epoch. */
  mtimeNs: bigint
  /** Symlink target, or for a hardlink the path of the earlier entry (same form as `path`). */
  linkname?: string
  devmajor?: number
  devminor?: number
  /** Extended attributes, written as SCHILY.xattr.* pax records in name order. */
  xattrs?: Record<string, Buffer>
}

export interface TarWriteOptions {
  /** No mtime later than this (ns since epoch). From SOURCE_DATE_EPOCH or --mtime. */
  mtimeClampNs?: bigint
  /** Keep sub-second mtimes (as pax records). Off by default: whole seconds reproduce better. */
  subsecondMtimes?: boolean
}

const TYPE_FLAGS: Record<TarEntryType, string> = {
  file: TypeFlag.File,
  hardlink: TypeFlag.Hardlink,
  symlink: TypeFlag.Symlink,
  char: TypeFlag.CharDevice,
  block: TypeFlag.BlockDevice,
  directory: TypeFlag.Directory,
  fifo: TypeFlag.Fifo,
}

const NS = 1_000_000_000n

/** SOURCE_DATE_EPOCH (reproducible-builds.org: decimal seconds) as a clamp in ns, if set. */
export function sourceDateEpochNs(env: NodeJS.ProcessEnv = process.env): bigint | undefined {
  const v = env['SOURCE_DATE_EPOCH']
  if (v === undefined || v === '') return undefined
  if (!/^\d+$/.test(v)) throw new LadingError('USAGE', `SOURCE_DATE_EPOCH must be a non-negative integer number of seconds, got ${quoteName(v)}`)
  return BigInt(v) * NS
}

/** The clamp to use: an explicit Date wins, else SOURCE_DATE_EPOCH, else none. */
export function resolveMtimeClamp(clamp: Date | undefined): bigint | undefined {
  if (clamp !== undefined) {
    const ms = clamp.getTime()
    if (!Number.isFinite(ms)) throw new LadingError('USAGE', 'invalid mtime clamp date')
    return BigInt(Math.floor(ms)) * 1_000_000n
  }
  return sourceDateEpochNs()
}

function checkName(what: string, s: string, entryPath: string): void {
  if (s.includes('\0')) throw new LadingError('UNSAFE_PATH', `tar entry ${quoteName(entryPath)}: ${what} contains a NUL byte`)
}

/** Paths we write must be relative and free of `..` so no reader could be led outside its root. */
function checkPath(p: string): void {
  checkName('path', p, p)
  if (p === '' || p.startsWith('/') || p.split('/').some((c) => c === '..' || c === '.' || c === '')) {
    throw new LadingError('UNSAFE_PATH', `refusing to write tar entry ${quoteName(p)}: not a clean relative path`)
  }
}

/** Effective mtime of an entry after clamping and (unless asked) truncation to whole seconds. */
export function effectiveMtimeNs(mtimeNs: bigint, opts: TarWriteOptions = {}): bigint {
  let t = mtimeNs
  if (opts.mtimeClampNs !== undefined && t > opts.mtimeClampNs) t = opts.mtimeClampNs
  if (!opts.subsecondMtimes) t = floorDiv(t, NS) * NS
  return t
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q
}

/** A pax mtime with a fraction: `sec.fraction`, nanoseconds without trailing zeros. */
function paxSeconds(sec: bigint, nsec: bigint): string {
  return `${sec}.${nsec.toString().padStart(9, '0').replace(/0+$/, '')}`
}

/** What an entry must satisfy to be written (the same for encodeEntryHeader and tarEntriesOf). */
function checkEntry(e: TarEntry): void {
  checkPath(e.path)
  if (e.type === 'symlink' || e.type === 'hardlink') {
    if (e.linkname === undefined) throw new LadingError('INVALID_TAR', `tar entry ${quoteName(e.path)}: ${e.type} without a link name`)
    checkName('link name', e.linkname, e.path)
    if (e.type === 'hardlink') checkPath(e.linkname)
  }
  const size = e.type === 'file' ? (e.size ?? 0) : 0
  if (!Number.isSafeInteger(size) || size < 0) throw new LadingError('INVALID_TAR', `tar entry ${quoteName(e.path)}: invalid size ${size}`)
  if (!Number.isSafeInteger(e.uid) || e.uid < 0 || !Number.isSafeInteger(e.gid) || e.gid < 0)
    throw new LadingError('INVALID_TAR', `tar entry ${quoteName(e.path)}: invalid uid/gid ${e.uid}/${e.gid}`)
  if (e.xattrs) {
    for (const k of Object.keys(e.xattrs)) {
      if (k.includes('=') || k.includes('\0') || k === '')
        throw new LadingError('INVALID_TAR', `tar entry ${quoteName(e.path)}: cannot encode xattr name ${quoteName(k)}`)
    }
  }
}

/**
 * The header block(s) for one entry: a pax 'x' header (with its data) if needed, then the ustar
 * header. The caller writes `size` bytes of content and padding(size) zero bytes after it.
 */
export function encodeEntryHeader(e: TarEntry, opts: TarWriteOptions = {}): Buffer {
  checkEntry(e)
  const isDir = e.type === 'directory'
  const pathStr = isDir ? `${e.path}/` : e.path
  const nameBytes = Buffer.from(pathStr, 'utf8')
  const pax: Buffer[] = []
  let split = splitUstarName(nameBytes)
  if (!split) {
    pax.push(paxRecord(PaxKey.Path, nameBytes))
    // The ustar name field gets a truncated stand-in (readers that honour pax ignore it).
    split = { prefix: Buffer.alloc(0), name: nameBytes.subarray(nameBytes.length - 100) }
  }
  let linkBytes = Buffer.alloc(0)
  if (e.linkname !== undefined && (e.type === 'symlink' || e.type === 'hardlink')) {
    linkBytes = Buffer.from(e.linkname, 'utf8')
    if (linkBytes.length > 100) {
      pax.push(paxRecord(PaxKey.LinkPath, linkBytes))
      linkBytes = linkBytes.subarray(0, 100)
    }
  }
  const size = e.type === 'file' ? (e.size ?? 0) : 0
  let ustarSize = size
  if (size > MAX_OCTAL_SIZE) {
    pax.push(paxRecord(PaxKey.Size, Buffer.from(String(size))))
    ustarSize = 0
  }
  let uid = e.uid
  let gid = e.gid
  if (uid > MAX_OCTAL_ID) {
    pax.push(paxRecord(PaxKey.Uid, Buffer.from(String(uid))))
    uid = 0
  }
  if (gid > MAX_OCTAL_ID) {
    pax.push(paxRecord(PaxKey.Gid, Buffer.from(String(gid))))
    gid = 0
  }
  const t = effectiveMtimeNs(e.mtimeNs, opts)
  const sec = floorDiv(t, NS)
  const nsec = t - sec * NS
  let ustarMtime: bigint = sec
  if (nsec !== 0n) {
    pax.push(paxRecord(PaxKey.Mtime, Buffer.from(paxSeconds(sec, nsec))))
  } else if (sec < 0n || sec > BigInt(MAX_OCTAL_SIZE)) {
    pax.push(paxRecord(PaxKey.Mtime, Buffer.from(String(sec))))
  }
  if (sec < 0n || sec > BigInt(MAX_OCTAL_SIZE)) ustarMtime = 0n
  if (e.xattrs) {
    for (const k of Object.keys(e.xattrs).sort()) {
      pax.push(paxRecord(PaxKey.XattrPrefix + k, e.xattrs[k]!))
    }
  }
  const header = encodeUstarHeader({
    name: split.name,
    prefix: split.prefix,
    mode: e.mode & 0o7777,
    uid,
    gid,
    size: ustarSize,
    mtime: ustarMtime,
    typeflag: TYPE_FLAGS[e.type],
    linkname: linkBytes,
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
  })
  if (pax.length === 0) return header
  const paxData = Buffer.concat(pax)
  // A fixed, content-derived name for the pax header keeps output reproducible (GNU uses
  // %d/PaxHeaders/%f with the pid; we leave the pid out).
  const base = Buffer.from(`PaxHeaders/${pathStr.replace(/\/$/, '').split('/').pop()!}`, 'utf8').subarray(0, 100)
  const paxHeader = encodeUstarHeader({
    name: base,
    prefix: Buffer.alloc(0),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: paxData.length,
    mtime: 0,
    typeflag: TypeFlag.PaxHeader,
    linkname: Buffer.alloc(0),
    devmajor: 0,
    devminor: 0,
  })
  return Buffer.concat([paxHeader, paxData, Buffer.alloc(padding(paxData.length)), header])
}

/** Where an entry's content comes from. */
export type TarContent = { file: string } | { data: Buffer }

export interface TarSource {
  entry: TarEntry
  /** Required for type 'file' with size > 0. */
  content?: TarContent
}

/**
 * Output is handed on in chunks of exactly this many bytes (the last one shorter), the gzip
 * encoder's block size: it then compresses each chunk as it comes, without gathering or copying.
 */
export const TAR_CHUNK = POOL_BLOCK_SIZE

function changedError(file: string, want: number, what: string): LadingError {
  return new LadingError('CONFLICT', `${file}: file ${what} while it was being archived (expected ${want} bytes)`)
}

/**
 * Open flags for content: no following a symlink swapped in since the scan, and no blocking on
 * a FIFO swapped in (O_NONBLOCK is a no-op for regular files); fstat then insists on a regular file.
 */
const OPEN_FLAGS = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK

function notRegular(file: string): LadingError {
  return new LadingError('CONFLICT', `${file}: no longer a regular file (changed while it was being archived)`)
}

/**
 * The chunk being filled. Headers, padding and file contents are written straight into it (file
 * data read into it by the kernel), so a byte of the archive is copied once on its way out.
 */
class Arena {
  buf = takeBlock()
  pos = 0
  get room(): number {
    return TAR_CHUNK - this.pos
  }
  /** The full chunk, and a fresh one to fill (the full one now belongs downstream). */
  take(): Buffer {
    const out = this.pos === TAR_CHUNK ? this.buf : this.buf.subarray(0, this.pos)
    this.buf = takeBlock()
    this.pos = 0
    return out
  }
}

/**
 * Stream a tar archive of `sources`, in the order given, ended by two zero blocks.
 * Pulls sources lazily; holds only the chunk being filled (TAR_CHUNK bytes) beyond what downstream keeps.
 */
export function writeTar(sources: Iterable<TarSource> | AsyncIterable<TarSource>, opts: TarWriteOptions = {}): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    const a = new Arena()
    /** Copy `b` in; yields every chunk that fills. */
    function* put(b: Buffer): Generator<Buffer> {
      let off = 0
      while (off < b.length) {
        const n = Math.min(a.room, b.length - off)
        b.copy(a.buf, a.pos, off, off + n)
        a.pos += n
        off += n
        if (a.room === 0) yield a.take()
      }
    }
    function* zeros(count: number): Generator<Buffer> {
      while (count > 0) {
        const n = Math.min(a.room, count)
        a.buf.fill(0, a.pos, a.pos + n)
        a.pos += n
        count -= n
        if (a.room === 0) yield a.take()
      }
    }
    for await (const { entry, content } of sources) {
      yield* put(encodeEntryHeader(entry, opts))
      const size = entry.type === 'file' ? (entry.size ?? 0) : 0
      if (size > 0) {
        if (!content) throw new LadingError('INVALID_TAR', `tar entry ${quoteName(entry.path)}: no content for a ${size}-byte file`)
        if ('data' in content) {
          if (content.data.length !== size)
            throw new LadingError('INVALID_TAR', `tar entry ${quoteName(entry.path)}: content is ${content.data.length} bytes, header says ${size}`)
          yield* put(content.data)
        } else {
          yield* readFileInto(a, content.file, size)
        }
        yield* zeros(padding(size))
      }
    }
    yield* put(END_OF_ARCHIVE)
    if (a.pos > 0) yield a.take()
  }
  return Readable.from(generate(), { objectMode: false, highWaterMark: TAR_CHUNK })
}

/**
 * Read exactly `size` bytes of `file` into the arena (yielding chunks as they fill), without
 * following a symlink swapped in; a file that is not regular, shrank or grew since it was
 * scanned is a CONFLICT. Reads are synchronous, in arena-sized pieces (the event loop gets a turn
 * at every full chunk): an asynchronous read would queue on libuv's pool behind the gzip blocks
 * being compressed there and stall the whole pipeline.
 */
function* readFileInto(a: Arena, file: string, size: number): Generator<Buffer> {
  const fd = openRegular(file)
  try {
    let left = size
    while (left > 0) {
      const n = fs.readSync(fd, a.buf, a.pos, Math.min(a.room, left), null)
      if (n === 0) throw changedError(file, size, 'shrank')
      a.pos += n
      left -= n
      if (a.room === 0) yield a.take()
    }
    // One more byte must find the end (the arena always has room: a full one was taken above).
    if (fs.readSync(fd, a.buf, a.pos, 1, null) !== 0) throw changedError(file, size, 'grew')
  } finally {
    fs.closeSync(fd)
  }
}

/** Open a file recorded as regular for reading its content; CONFLICT if it no longer is one. */
function openRegular(file: string): number {
  const fd = fs.openSync(file, OPEN_FLAGS)
  try {
    if (!fs.fstatSync(fd).isFile()) throw notRegular(file)
  } catch (e) {
    fs.closeSync(fd)
    throw e
  }
  return fd
}

/** Bodies up to this size are read whole, as readTar hands them over; larger ones in pieces. */
const WHOLE_BODY_MAX = DEFAULT_SMALL_FILE_MAX

const READER_TYPES: Record<TarEntryType, ReadTarEntryType> = {
  file: 'file',
  hardlink: 'hardlink',
  symlink: 'symlink',
  char: 'char',
  block: 'block',
  directory: 'dir',
  fifo: 'fifo',
}

/**
 * The entries readTar would read back from `writeTar(sources, opts)`, made directly: the same
 * checks as encodeEntryHeader, the same header values (path as stored, a directory's with its
 * trailing '/'; mtime clamped and truncated as written, in seconds as parsed back; numeric
 * ownership only; xattrs in name order), and each file's content read once, refused with
 * CONFLICT if it is no longer a regular file of the recorded size. For applyEntries: applying a
 * tree without encoding a tar and parsing it again. Contents are read when an entry is reached,
 * so the consumer must take entries in order and each body before the next entry (as with readTar).
 */
export function* tarEntriesOf(sources: Iterable<TarSource>, opts: TarWriteOptions = {}): Generator<ReadTarEntry> {
  for (const { entry: e, content } of sources) {
    checkEntry(e)
    const size = e.type === 'file' ? (e.size ?? 0) : 0
    const t = effectiveMtimeNs(e.mtimeNs, opts)
    const sec = floorDiv(t, NS)
    const nsec = t - sec * NS
    // encodeEntryHeader writes `sec.fraction` as a pax record when there is a fraction, and readTar
    // parses it with Number(): the same string gives the same double.
    const mtime = nsec === 0n ? Number(sec) : Number(paxSeconds(sec, nsec))
    let xattrs: Map<string, Buffer> | undefined
    if (e.xattrs) {
      const keys = Object.keys(e.xattrs).sort()
      if (keys.length > 0) xattrs = new Map(keys.map((k) => [k, e.xattrs![k]!]))
    }
    const header: TarHeader = {
      path: e.type === 'directory' ? `${e.path}/` : e.path,
      type: READER_TYPES[e.type],
      typeflag: TYPE_FLAGS[e.type],
      mode: e.mode & 0o7777,
      uid: e.uid,
      gid: e.gid,
      uname: '',
      gname: '',
      size,
      mtime,
      atime: undefined,
      linkpath: e.type === 'symlink' || e.type === 'hardlink' ? e.linkname! : '',
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
      xattrs,
      sparse: undefined,
    }
    let body: Buffer | undefined
    let chunks: () => AsyncGenerator<Buffer>
    if (size === 0) body = Buffer.alloc(0)
    else if (!content) throw new LadingError('INVALID_TAR', `tar entry ${quoteName(e.path)}: no content for a ${size}-byte file`)
    else if ('data' in content) {
      if (content.data.length !== size)
        throw new LadingError('INVALID_TAR', `tar entry ${quoteName(e.path)}: content is ${content.data.length} bytes, header says ${size}`)
      body = content.data
    } else if (size <= WHOLE_BODY_MAX) {
      body = readWhole(content.file, size)
    }
    if (body !== undefined) {
      const whole = body
      chunks = async function* () {
        if (whole.length > 0) yield whole
      }
    } else {
      const file = (content as { file: string }).file
      chunks = async function* () {
        yield* readPieces(file, size)
      }
    }
    yield { header, offset: 0, body, chunks }
  }
}

/** Exactly `size` bytes of `file` in one buffer (see openRegular; shrinking or growing is a CONFLICT). */
function readWhole(file: string, size: number): Buffer {
  const fd = openRegular(file)
  try {
    // One byte more than promised, so that a file that grew is seen in the same read.
    const buf = Buffer.allocUnsafe(size + 1)
    let got = 0
    while (got < size + 1) {
      const n = fs.readSync(fd, buf, got, size + 1 - got, null)
      if (n === 0) break
      got += n
    }
    if (got < size) throw changedError(file, size, 'shrank')
    if (got > size) throw changedError(file, size, 'grew')
    return buf.subarray(0, size)
  } finally {
    fs.closeSync(fd)
  }
}

/** `file`'s `size` bytes in pieces of at most WHOLE_BODY_MAX, for large files (bounded memory). */
function* readPieces(file: string, size: number): Generator<Buffer> {
  const fd = openRegular(file)
  try {
    let left = size
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(WHOLE_BODY_MAX, left))
      const n = fs.readSync(fd, buf, 0, buf.length, null)
      if (n === 0) throw changedError(file, size, 'shrank')
      left -= n
      yield n === buf.length ? buf : buf.subarray(0, n)
    }
    if (fs.readSync(fd, Buffer.alloc(1), 0, 1, null) !== 0) throw changedError(file, size, 'grew')
  } finally {
    fs.closeSync(fd)
  }
}
