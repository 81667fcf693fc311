/**
 * Writing an archive in one forward pass (it never seeks): to a temp file beside FILE that is
 * fsynced and renamed over it (so FILE is never half-written: absent, old, or complete), or
 * straight to stdout / a pipe / a device for `-`, /dev/stdout and FIFOs.
 */
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import { isErrno } from '../../errors.js'
import { removeTemp } from '../../io/cleanup.js'
import { publishTemp, tempPathFor } from '../../io/fs.js'

const MTIME = new Date(0)

/** Adds members to a tar being written; every method resolves once the member is in the stream. */
export class TarSink {
  readonly #pack: tar.Pack
  readonly #names = new Set<string>()
  constructor(pack: tar.Pack) { this.#pack = pack }

  /** A file's bytes as a member (`size` must be its size: tar headers come first). */
  async file(name: string, file: string, size: number): Promise<void> {
    if (this.#names.has(name)) return
    this.#names.add(name)
    const entry = this.#pack.entry({ name, size, mode: 0o644, mtime: MTIME, uid: 0, gid: 0, type: 'file' })
    await pipeline(createReadStream(file), entry)
  }

  bytes(name: string, data: Uint8Array): Promise<void> {
    if (this.#names.has(name)) return Promise.resolve()
    this.#names.add(name)
    return new Promise((resolve, reject) => {
      this.#pack.entry({ name, size: data.length, mode: 0o644, mtime: MTIME, uid: 0, gid: 0, type: 'file' }, Buffer.from(data), (err) => (err ? reject(err) : resolve()))
    })
  }

  symlink(name: string, target: string): Promise<void> {
    if (this.#names.has(name)) return Promise.resolve()
    this.#names.add(name)
    return new Promise((resolve, reject) => {
      this.#pack.entry({ name, linkname: target, mode: 0o777, mtime: MTIME, uid: 0, gid: 0, type: 'symlink' }, (err) => (err ? reject(err) : resolve()))
    })
  }

  dir(name: string): Promise<void> {
    if (this.#names.has(name)) return Promise.resolve()
    this.#names.add(name)
    return new Promise((resolve, reject) => {
      this.#pack.entry({ name, mode: 0o755, mtime: MTIME, uid: 0, gid: 0, type: 'directory' }, (err) => (err ? reject(err) : resolve()))
    })
  }
}

/** True when FILE must be written as a stream (stdout, a pipe, a character device). */
export async function isStreamTarget(file: string): Promise<boolean> {
  if (file === '-' || file === '/dev/stdout') return true
  try {
    const st = await fsp.stat(file)
    return st.isFIFO() || st.isCharacterDevice() || st.isSocket()
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return false
    throw e
  }
}

/** Write the tar `fill` produces to `file` (see the module comment for the atomicity contract). */
export async function writeArchive(file: string, stdout: NodeJS.WritableStream | undefined, fill: (sink: TarSink) => Promise<void>, label: string): Promise<void> {
  const pack = tar.pack()
  const run = async (): Promise<void> => {
    try {
      await fill(new TarSink(pack))
      pack.finalize()
    } catch (e) {
      pack.destroy(e as Error)
      throw e
    }
  }
  if (await isStreamTarget(file)) {
    const out = (file === '-' ? (stdout ?? process.stdout) : createWriteStream(file, { flags: 'a' })) as Writable
    // Never end process.stdout: other output (or nothing) may follow, and Node refuses to close it.
    await Promise.all([run(), pipeline(pack, out, { end: out !== process.stdout })])
    return
  }
  const abs = path.resolve(file)
  const tmp = tempPathFor(abs)
  try {
    // flush: fsync before close, so the rename below publishes a durable archive.
    await Promise.all([run(), pipeline(pack, createWriteStream(tmp, { flags: 'wx', mode: 0o644, flush: true }))])
    // Never over a file that has content (publishTemp): refused at open, and again here in case
    // one appeared while the copy ran.
    await publishTemp(tmp, abs, label, false)
  } catch (e) {
    await removeTemp(tmp)
    throw e
  }
}
