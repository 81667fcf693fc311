/**
 * File helpers with the atomicity contract the whole project relies on: a file written
 * through these is either absent, the old version, or the complete new version; never partial.
 * Temp files are named `.<name>.tmp-<pid>-<random>` in the same directory (same filesystem, so
 * rename(2) is atomic) and are what gc sweeps after a crash.
 */
import { randomBytes } from 'node:crypto'
import fs, { constants, promises as fsp, type Stats } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import path from 'node:path'
import { LadingError, isErrno } from '../errors.js'
import { releaseTemp, removeTemp, sweepAbandoned, trackTemp } from './cleanup.js'

export { processAlive } from './cleanup.js'

export const TEMP_MARKER = '.tmp-'

/**
 * A temp name beside `target`, tracked by src/io/cleanup.ts from now on: the writer calls
 * releaseTemp once it renamed the file into place, or removeTemp to give up on it, and an
 * interrupted process removes it on its way out.
 */
export function tempPathFor(target: string): string {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}${TEMP_MARKER}${process.pid}-${randomBytes(6).toString('hex')}`)
  trackTemp(tmp)
  return tmp
}

/** True for names our atomic writers create as temporaries. */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.includes(TEMP_MARKER)
}

/** The pid embedded in a temp name, to tell a live writer's file from a crashed one's. */
export function tempNamePid(name: string): number | undefined {
  const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(name)
  return m ? Number(m[1]) : undefined
}

/**
 * Remove the temp files of dead writers of `target` (`.<name>.tmp-<pid>-*` beside it: a copy
 * killed before it could clean up), by the rule of src/io/cleanup.ts sweepAbandoned.
 */
export function sweepAbandonedTempsOf(target: string): Promise<number> {
  const prefix = `.${path.basename(target)}${TEMP_MARKER}`
  return sweepAbandoned(path.dirname(path.resolve(target)), (name) => (name.startsWith(prefix) ? tempNamePid(name) : undefined))
}

/** fsync a directory so a rename or unlink inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh
  try {
    fh = await fsp.open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
    await fh.sync()
  } catch (e) {
    // Some filesystems refuse fsync on directories (EINVAL); durability is best effort there.
    if (!isErrno(e, 'EINVAL') && !isErrno(e, 'EISDIR')) throw e
  } finally {
    await fh?.close()
  }
}

/**
 * Write `data` to `target` atomically: temp file, fsync, rename, fsync dir. `durable: false`
 * keeps the atomicity (readers see the old file or the whole new one) without the two fsyncs,
 * for a file nobody reads after a crash.
 */
export async function atomicWriteFile(target: string, data: Uint8Array | string, mode = 0o644, opts: { durable?: boolean } = {}): Promise<void> {
  const durable = opts.durable ?? true
  const tmp = tempPathFor(target)
  const fh = await fsp.open(tmp, 'wx', mode)
  try {
    await fh.writeFile(data)
    if (durable) await fh.sync()
  } catch (e) {
    await fh.close().catch(() => {})
    await removeTemp(tmp)
    throw e
  }
  await fh.close()
  try {
    await fsp.rename(tmp, target)
    releaseTemp(tmp)
  } catch (e) {
    await removeTemp(tmp)
    throw e
  }
  if (durable) await fsyncDir(path.dirname(target))
}

/**
 * Refuse to write an archive over a file that has content (skopeo 1.9's docker-archive refuses
 * one with "docker-archive doesn't support modifying existing images"; an empty file, which a
 * user may create first, is written into). Anything that is not a regular file is the caller's
 * business (a FIFO or device is streamed to; a directory fails on its own).
 */
export async function assertNoContent(target: string, label: string): Promise<void> {
  let st: Stats
  try {
    st = await fsp.stat(target)
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return
    throw e
  }
  if (st.isFile() && st.size > 0) {
    throw new LadingError('EXISTS', `${label}: the file already exists (${st.size} bytes); refusing to replace it (remove it first)`)
  }
}

/**
 * Put a finished, fsynced temp file in place of `target`. With `replace` false the target must
 * not have content when it is published (assertNoContent), checked atomically: link(2) fails on
 * an existing name, so a file created while the copy ran is never replaced. Filesystems without
 * hard links get the check and a rename.
 */
export async function publishTemp(tmp: string, target: string, label: string, replace: boolean): Promise<void> {
  if (!replace) {
    try {
      await fsp.link(tmp, target)
      await fsp.unlink(tmp)
      releaseTemp(tmp)
      await fsyncDir(path.dirname(target))
      return
    } catch (e) {
      if (!isErrno(e, 'EEXIST') && !isErrno(e, 'EPERM') && !isErrno(e, 'ENOTSUP') && !isErrno(e, 'EOPNOTSUPP') && !isErrno(e, 'EXDEV')) throw e
    }
    await assertNoContent(target, label)
  }
  await fsp.rename(tmp, target)
  releaseTemp(tmp)
  await fsyncDir(path.dirname(target))
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p)
    return true
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return false
    throw e
  }
}

/**
 * Read at most `n` bytes from the start of an open file. Sizing the buffer from a size checked
 * before reading bounds the memory used even if the file grows meanwhile (a longer file then
 * fails verification); a shorter one returns what was there.
 */
export async function readUpTo(fh: FileHandle, n: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(n)
  let off = 0
  while (off < n) {
    const { bytesRead } = await fh.read(buf, off, n - off, off)
    if (bytesRead === 0) break
    off += bytesRead
  }
  return off === n ? buf : buf.subarray(0, off)
}

/**
 * A write stream onto `file`, created (O_EXCL, `mode`) before the stream exists. fs's
 * createWriteStream opens lazily: when a pipeline into it fails before that open has completed,
 * the open can create the file after the caller's cleanup ran, and a temp file is left behind
 * (seen under load: archive output's CONFLICT test). Here the file exists, or the call failed,
 * before any byte flows. `flush`: fsync before the handle is closed.
 */
export async function createNewFileStream(file: string, opts: { mode: number; flush?: boolean }): Promise<Writable> {
  const fh = await fsp.open(file, 'wx', opts.mode)
  return fh.createWriteStream({ flush: opts.flush ?? false })
}

/**
 * A small regular file (a document: oci-layout, index.json, a manifest or config blob), read
 * synchronously without following a symlink (O_NOFOLLOW; O_NONBLOCK so a FIFO cannot block the
 * open). `check` sees the file's stats before anything is read and throws to refuse it; the
 * buffer is sized from the size it saw (see readUpTo).
 *
 * Synchronous on purpose: four thread-pool round trips (open, stat, read, close) per document
 * put the event loop's other work (a registry's responses, the next request) between each, and
 * cost a push several milliseconds before its first byte. These reads are a few KiB of local
 * metadata; blob contents are always streamed.
 */
export function readSmallFileSync(file: string, check: (st: Stats) => void): Buffer {
  const fd = fs.openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  try {
    const st = fs.fstatSync(fd)
    check(st)
    const buf = Buffer.allocUnsafe(st.size)
    let off = 0
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, off)
      if (n === 0) break
      off += n
    }
    return off === buf.length ? buf : buf.subarray(0, off)
  } finally {
    fs.closeSync(fd)
  }
}
