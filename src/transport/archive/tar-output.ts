/**
 * Writing an archive in one forward pass (it never seeks): to a temp file beside FILE that is
 * fsynced and renamed over it (so FILE is never half-written: absent, old, or complete), or
 * straight to stdout / a pipe / a device for `-`, /dev/stdout and FIFOs.
 */
import { createWriteStream, promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { isErrno } from '../../errors.js'
import { removeTemp } from '../../io/cleanup.js'
import { createNewFileStream, publishTemp, tempPathFor } from '../../io/fs.js'
import { writeTar, type TarSource } from '../../layer/tar-writer.js'
import { memberEntry } from './archive-writer.js'

/**
 * The members of an archive to write, in order; the first of a name wins. The members are
 * written by the layer tar writer (layer/tar-writer.ts writeTar, headers from the shared codec),
 * which reads each file once, without following a symlink swapped in, and refuses one whose size
 * changed since it was added (CONFLICT): the header already promised that size.
 */
export class TarSink {
  readonly #sources: TarSource[] = []
  readonly #names = new Set<string>()

  #add(name: string, source: TarSource): void {
    if (this.#names.has(name)) return
    this.#names.add(name)
    this.#sources.push(source)
  }

  /** A file's bytes as a member (`size` must be its size: tar headers come first). */
  file(name: string, file: string, size: number): Promise<void> {
    this.#add(name, { entry: memberEntry(name, 'file', { size }), content: { file } })
    return Promise.resolve()
  }

  bytes(name: string, data: Uint8Array): Promise<void> {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    this.#add(name, { entry: memberEntry(name, 'file', { size: buf.length }), content: { data: buf } })
    return Promise.resolve()
  }

  symlink(name: string, target: string): Promise<void> {
    this.#add(name, { entry: memberEntry(name, 'symlink', { linkname: target }) })
    return Promise.resolve()
  }

  dir(name: string): Promise<void> {
    this.#add(name, { entry: memberEntry(name, 'directory') })
    return Promise.resolve()
  }

  /** The members added so far, in order. */
  sources(): readonly TarSource[] {
    return this.#sources
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
export async function writeArchive(
  file: string,
  stdout: NodeJS.WritableStream | undefined,
  fill: (sink: TarSink) => Promise<void>,
  label: string,
): Promise<void> {
  // Members are listed first (they are names of bytes already at hand: memory, spool files, a
  // layout), then streamed: a failure while listing writes nothing at all.
  const sink = new TarSink()
  await fill(sink)
  if (await isStreamTarget(file)) {
    const out = (file === '-' ? (stdout ?? process.stdout) : createWriteStream(file, { flags: 'a' })) as Writable
    // Never end process.stdout: other output (or nothing) may follow, and Node refuses to close it.
    await pipeline(writeTar(sink.sources()), out, { end: out !== process.stdout })
    return
  }
  const abs = path.resolve(file)
  const tmp = tempPathFor(abs)
  try {
    // flush: fsync before close, so the rename below publishes a durable archive.
    const out = await createNewFileStream(tmp, { mode: 0o644, flush: true })
    await pipeline(writeTar(sink.sources()), out)
    // Never over a file that has content (publishTemp): refused at open, and again here in case
    // one appeared while the copy ran.
    await publishTemp(tmp, abs, label, false)
  } catch (e) {
    await removeTemp(tmp)
    throw e
  }
}
