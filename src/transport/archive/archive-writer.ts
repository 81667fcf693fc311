/**
 * A tar archive built in place in a temp file beside its target (so the target is never
 * half-written: absent, old, or complete), with members at known offsets. A member whose size
 * is not known in advance (a layer being decompressed) streams straight into the file after a
 * reserved header block, and its header is written once the stream ended: the bytes are written
 * once, not spooled and copied. Other members are appended whole. publish() ends the archive,
 * fsyncs it and renames it over the target.
 *
 * One streamed member at a time (`streaming`): members are contiguous, and the next one starts
 * where the last ended. A streamed member that fails is cut off again (the file is truncated
 * back to where it began), so a failed blob leaves no trace in the archive.
 *
 * Headers are ustar (layer/tar-writer's encoding): mode 0644 (0755 directories, 0777 links),
 * uid/gid 0, mtime 0. A streamed member of 8 GiB or more gets its size in GNU base-256 in the
 * same single header block (pax would need more blocks than were reserved), which GNU tar, Go's
 * archive/tar (skopeo, docker load) and Lading read.
 */
import { createReadStream, promises as fsp } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { Writable, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Digest } from '../../digest/digest.js'
import { verifiedStream } from '../../digest/verify.js'
import { removeTemp } from '../../io/cleanup.js'
import { publishTemp, tempPathFor } from '../../io/fs.js'
import { BLOCK_SIZE, Header } from '../../layer/tar-constants.js'
import { END_OF_ARCHIVE, padding, writeHeaderChecksum, writeNumber } from '../../layer/tar-header.js'
import { encodeEntryHeader, type TarEntry } from '../../layer/tar-writer.js'
import { quoteName } from '../../errors.js'

const COPY_CHUNK = 1024 * 1024

/**
 * A stream writing into `fh` from `start` on with positional writes (batches as one writev). Not
 * fh.createWriteStream: a stream made there holds the FileHandle until it closes, and close()
 * of the handle waits for it.
 */
function writerAt(fh: FileHandle, start: number): Writable & { readonly written: number } {
  let pos = start
  const writeAll = async (bufs: Buffer[]): Promise<void> => {
    const total = bufs.reduce((n, b) => n + b.length, 0)
    const { bytesWritten } = await fh.writev(bufs, pos)
    if (bytesWritten < total) {
      // A short write (rare on regular files): write the rest.
      const rest = Buffer.concat(bufs).subarray(bytesWritten)
      for (let off = 0; off < rest.length;) off += (await fh.write(rest, off, rest.length - off, pos + bytesWritten + off)).bytesWritten
    }
    pos += total
  }
  const w = new Writable({
    highWaterMark: COPY_CHUNK,
    writev(chunks, cb) {
      writeAll(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb)
    },
  })
  return Object.defineProperty(w, 'written', { get: () => pos - start }) as Writable & { readonly written: number }
}

/**
 * The entry of an archive member: mode 0644 (0755 directories, 0777 links), uid/gid 0, mtime 0,
 * so an archive's bytes depend only on its members. `name` may end in '/' for a directory.
 */
export function memberEntry(name: string, type: TarEntry['type'], extra: Partial<TarEntry> = {}): TarEntry {
  return {
    path: type === 'directory' ? name.replace(/\/$/, '') : name,
    type,
    mode: type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644,
    uid: 0,
    gid: 0,
    mtimeNs: 0n,
    ...extra,
  }
}

/** One ustar header block for a regular file of `size` bytes (base-256 size from 8 GiB on). */
export function fileHeaderBlock(name: string, size: number): Buffer {
  const h = encodeEntryHeader(memberEntry(name, 'file', { size: 0 }))
  if (h.length !== BLOCK_SIZE) throw new Error(`tar member name ${quoteName(name)} needs more than one header block`)
  writeNumber(h, Header.size, size)
  writeHeaderChecksum(h)
  return h
}

export class ArchiveWriter {
  readonly #target: string
  readonly #tmp: string
  readonly #fh: FileHandle
  #end = 0
  #streaming = false
  readonly #names = new Set<string>()

  private constructor(target: string, tmp: string, fh: FileHandle) {
    this.#target = target
    this.#tmp = tmp
    this.#fh = fh
  }

  /** A new, empty temp archive beside `target`. */
  static async create(target: string): Promise<ArchiveWriter> {
    const abs = path.resolve(target)
    const tmp = tempPathFor(abs)
    const fh = await fsp.open(tmp, 'wx', 0o644)
    return new ArchiveWriter(abs, tmp, fh)
  }

  /** A member is streaming in right now; another one must wait or go elsewhere. */
  get streaming(): boolean {
    return this.#streaming
  }

  has(name: string): boolean {
    return this.#names.has(name)
  }

  async #writeAt(buf: Buffer, at: number): Promise<void> {
    let done = 0
    while (done < buf.length) {
      const { bytesWritten } = await this.#fh.write(buf, done, buf.length - done, at + done)
      done += bytesWritten
    }
  }

  async #append(buf: Buffer): Promise<void> {
    await this.#writeAt(buf, this.#end)
    this.#end += buf.length
  }

  /**
   * Stream a member of unknown size: `streams` (a source and its verifier, say) are piped into
   * the file after a reserved header block; `name` is asked once they ended, and the header is
   * written then. Returns where the data sits, or undefined when `name` declines the member (it
   * turned out to be one the archive has) or the archive has that name: the bytes are cut off
   * again. On failure the archive is cut back too.
   */
  async streamMember(streams: [Readable, ...NodeJS.ReadWriteStream[]], name: () => string | undefined): Promise<{ offset: number; size: number } | undefined> {
    if (this.#streaming) throw new Error('ArchiveWriter: one streamed member at a time')
    this.#streaming = true
    const at = this.#end
    try {
      const out = writerAt(this.#fh, at + BLOCK_SIZE)
      await pipeline([...streams, out])
      const size = out.written
      const member = name()
      if (member === undefined || this.#names.has(member)) {
        await this.#fh.truncate(at)
        return undefined
      }
      const pad = padding(size)
      if (pad > 0) await this.#writeAt(Buffer.alloc(pad), at + BLOCK_SIZE + size)
      await this.#writeAt(fileHeaderBlock(member, size), at)
      this.#end = at + BLOCK_SIZE + size + pad
      this.#names.add(member)
      return { offset: at + BLOCK_SIZE, size }
    } catch (e) {
      await this.#fh.truncate(at).catch(() => {})
      throw e
    } finally {
      this.#streaming = false
    }
  }

  /** Append a member from memory (skipped if `name` is there already). */
  async addBytes(name: string, data: Uint8Array): Promise<void> {
    if (this.#names.has(name)) return
    this.#names.add(name)
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    await this.#append(Buffer.concat([fileHeaderBlock(name, buf.length), buf, Buffer.alloc(padding(buf.length))]))
  }

  /**
   * Append a member copied from `size` bytes of a file (at `from.offset`; checked against
   * `from.digest` on the way when given). Skipped if `name` is there already.
   */
  async addFile(name: string, file: string, size: number, from: { offset?: number; digest?: Digest } = {}): Promise<void> {
    if (this.#names.has(name)) return
    const start = from.offset ?? 0
    await this.#copyIn(name, size, () => {
      const input = createReadStream(file, { start, ...(size > 0 ? { end: start + size - 1 } : {}), highWaterMark: COPY_CHUNK })
      return from.digest === undefined ? input : verifiedStream(input, { digest: from.digest, size, name: `${name} (from ${file})` })
    })
  }

  /** Append a member whose bytes are already in this archive at `offset` (one blob under a second name). */
  async addCopy(name: string, offset: number, size: number): Promise<void> {
    if (this.#names.has(name)) return
    await this.#copyIn(name, size, () => createReadStream(this.#tmp, { start: offset, end: offset + size - 1, highWaterMark: COPY_CHUNK }))
  }

  async #copyIn(name: string, size: number, input: () => Readable): Promise<void> {
    const at = this.#end
    try {
      await this.#writeAt(fileHeaderBlock(name, size), at)
      if (size > 0) {
        const out = writerAt(this.#fh, at + BLOCK_SIZE)
        await pipeline(input(), out)
        if (out.written !== size) throw new Error(`${name}: expected ${size} bytes, copied ${out.written}`)
      }
      const pad = padding(size)
      if (pad > 0) await this.#writeAt(Buffer.alloc(pad), at + BLOCK_SIZE + size)
      this.#end = at + BLOCK_SIZE + size + pad
      this.#names.add(name)
    } catch (e) {
      await this.#fh.truncate(at).catch(() => {})
      throw e
    }
  }

  async addDir(name: string): Promise<void> {
    if (this.#names.has(name)) return
    this.#names.add(name)
    await this.#append(encodeEntryHeader(memberEntry(name, 'directory')))
  }

  async addSymlink(name: string, target: string): Promise<void> {
    if (this.#names.has(name)) return
    this.#names.add(name)
    await this.#append(encodeEntryHeader(memberEntry(name, 'symlink', { linkname: target })))
  }

  /**
   * End the archive, make it durable and put it in place of the target. Unless `replace`, a
   * target that has content by now is left as it is (publishTemp) and this fails with EXISTS.
   */
  async publish(label: string, replace: boolean): Promise<void> {
    if (this.#streaming) throw new Error('ArchiveWriter: a member is still streaming')
    await this.#append(END_OF_ARCHIVE)
    // Anything past the end (a cut-off member's pages) is dropped before the rename.
    await this.#fh.truncate(this.#end)
    await this.#fh.sync()
    await this.#fh.close()
    await publishTemp(this.#tmp, this.#target, label, replace)
  }

  /** Throw the temp archive away (an uncommitted copy). */
  async discard(): Promise<void> {
    await this.#fh.close().catch(() => {})
    await removeTemp(this.#tmp)
  }
}
