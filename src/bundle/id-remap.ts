/**
 * Host ids back to container ids in a layer tar. A bundle unpacked with --uid-map/--gid-map, or
 * rootless (everything then belongs to the unprivileged user), has host ownership on disk; the
 * layer a repack writes must carry the *container's* ids (umoci maps them back the same way),
 * else a rootless repack would publish files owned by, say, uid 1001 instead of root.
 *
 * The stream rewrites the uid/gid header fields (and pax `uid`/`gid` records) of a tar written by
 * Lading's own tar writer (ustar + pax 'x' headers); data passes through untouched, so the cost
 * is one header rewrite per entry. Checksums are recomputed (POSIX ustar: sum of the header bytes
 * with the checksum field counted as spaces).
 */
import { Transform, type TransformCallback } from 'node:stream'
import { LadingError } from '../errors.js'
import { BLOCK_SIZE, Header, PaxKey, TypeFlag } from '../layer/tar-constants.js'
import { fieldNumber, parsePax, paxInt, paxRecord, writeHeaderChecksum, writeNumber, type HeaderField } from '../layer/tar-header.js'

export interface IdMap {
  containerId: number
  hostId: number
  size: number
}
export type IdMapper = (hostId: number) => number

/**
 * host -> container for ids inside a mapping; with no mappings (plain rootless), the current
 * user's id -> 0 (the user namespace of `runc spec --rootless` maps container 0 to it). Other
 * ids are left as they are.
 */
export function inverseMapper(maps: IdMap[] | undefined, current: number | undefined): IdMapper {
  if (maps && maps.length > 0) {
    return (h) => {
      for (const m of maps) if (h >= m.hostId && h < m.hostId + m.size) return m.containerId + (h - m.hostId)
      return h
    }
  }
  return (h) => (current !== undefined && h === current ? 0 : h)
}

/** PAX data cap: pax headers we write hold a path, a link name and xattrs, never megabytes. */
const MAX_PAX_BYTES = 16 * 1024 * 1024

function padded(n: number): number {
  return Math.ceil(n / BLOCK_SIZE) * BLOCK_SIZE
}

/** A numeric header field, checked as the layer reader checks it (shared codec). */
function readNumber(h: Buffer, field: HeaderField, what: string): number {
  return fieldNumber(h, field.offset, field.length, what, () => 'id remap: tar header')
}

export class IdRemapStream extends Transform {
  readonly #uid: IdMapper
  readonly #gid: IdMapper
  readonly #head = Buffer.alloc(BLOCK_SIZE)
  #headLen = 0
  /** Bytes of entry data (with padding) still to pass through. */
  #skip = 0
  #pax: { header: Buffer; size: number; chunks: Buffer[]; got: number } | undefined
  /** Data size of the next entry when a pax header gave one. */
  #nextSize: number | undefined

  constructor(uid: IdMapper, gid: IdMapper) {
    super({ highWaterMark: 256 * 1024 })
    this.#uid = uid
    this.#gid = gid
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      let off = 0
      while (off < chunk.length) {
        if (this.#skip > 0) {
          const n = Math.min(this.#skip, chunk.length - off)
          this.push(chunk.subarray(off, off + n))
          off += n
          this.#skip -= n
          continue
        }
        if (this.#pax) {
          const p = this.#pax
          const n = Math.min(padded(p.size) - p.got, chunk.length - off)
          p.chunks.push(Buffer.from(chunk.subarray(off, off + n)))
          p.got += n
          off += n
          if (p.got === padded(p.size)) this.#finishPax()
          continue
        }
        const n = Math.min(BLOCK_SIZE - this.#headLen, chunk.length - off)
        chunk.copy(this.#head, this.#headLen, off, off + n)
        this.#headLen += n
        off += n
        if (this.#headLen === BLOCK_SIZE) {
          this.#headLen = 0
          this.#header(Buffer.from(this.#head))
        }
      }
      cb()
    } catch (e) {
      cb(e as Error)
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.#headLen !== 0 || this.#pax || this.#skip !== 0) cb(new LadingError('INVALID_TAR', 'id remap: the layer tar ended inside an entry'))
    else cb()
  }

  #header(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      this.push(h)
      return
    }
    const type = String.fromCharCode(h[Header.typeflag.offset]!)
    const size = readNumber(h, Header.size, 'size')
    if (type === TypeFlag.PaxHeader) {
      if (size > MAX_PAX_BYTES) throw new LadingError('INVALID_TAR', `id remap: pax header of ${size} bytes is larger than ${MAX_PAX_BYTES}`)
      this.#pax = { header: h, size, chunks: [], got: 0 }
      if (size === 0) this.#finishPax()
      return
    }
    if (type === TypeFlag.PaxGlobalHeader || type === TypeFlag.GnuLongName || type === TypeFlag.GnuLongLink) {
      this.push(h)
      this.#skip = padded(size)
      return
    }
    writeNumber(h, Header.uid, this.#uid(readNumber(h, Header.uid, 'uid')))
    writeNumber(h, Header.gid, this.#gid(readNumber(h, Header.gid, 'gid')))
    writeHeaderChecksum(h)
    this.push(h)
    this.#skip = padded(this.#nextSize ?? size)
    this.#nextSize = undefined
  }

  #finishPax(): void {
    const p = this.#pax!
    this.#pax = undefined
    const data = Buffer.concat(p.chunks).subarray(0, p.size)
    const out: Buffer[] = []
    for (const [key, value] of parsePax(data, 'id remap: pax header')) {
      if (key === PaxKey.Uid || key === PaxKey.Gid) {
        const mapped = (key === PaxKey.Uid ? this.#uid : this.#gid)(paxInt(value, key, 'id remap'))
        out.push(paxRecord(key, Buffer.from(String(mapped))))
      } else {
        if (key === PaxKey.Size) this.#nextSize = paxInt(value, key, 'id remap')
        out.push(paxRecord(key, value))
      }
    }
    const newData = Buffer.concat(out)
    const h = p.header
    writeNumber(h, Header.size, newData.length)
    writeHeaderChecksum(h)
    this.push(h)
    this.push(newData)
    const pad = padded(newData.length) - newData.length
    if (pad > 0) this.push(Buffer.alloc(pad))
  }
}
