/**
 * A random-access view of an uncompressed tar file: one pass over the headers records where each
 * regular file's bytes are, so an archive transport can serve any member as a file range without
 * extracting the archive or holding a layer in memory.
 *
 * The archive is untrusted: header checksums are checked, sizes are bounded by the file size, the
 * number of entries and of pax/long-name bytes are capped, and names are only ever used as lookup
 * keys (nothing is written to disk), so a hostile name cannot escape anywhere. Symlinks and hard
 * links are resolved inside the archive only (Docker >= 25 `docker save` writes the legacy
 * `<id>/layer.tar` as a symlink to `blobs/sha256/<hex>`).
 */
import { createReadStream, promises as fsp } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { LadingError, quoteName } from '../../errors.js'
import { readAllLimited } from '../../io/limits.js'

const BLOCK = 512
const MAX_ENTRIES = 1_000_000
const MAX_META_BYTES = 1024 * 1024

interface Member { kind: 'file'; offset: number; size: number }
interface Link { kind: 'symlink' | 'hardlink'; target: string }

/** Canonical member name: no leading `./` or `/`, no empty or `.` components; undefined if it climbs out. */
export function normalizeMemberName(name: string): string | undefined {
  const n = path.posix.normalize(name.replace(/^\/+/, '')).replace(/\/+$/, '')
  if (n === '' || n === '.' || n === '..' || n.startsWith('../')) return undefined
  return n
}

function readOctal(buf: Buffer, off: number, len: number, what: string, file: string): number {
  // GNU base-256: high bit of the first byte set, big-endian binary in the rest.
  if (buf[off]! & 0x80) {
    let v = buf[off]! & 0x7f
    for (let i = 1; i < len; i++) v = v * 256 + buf[off + i]!
    if (!Number.isSafeInteger(v)) throw new LadingError('INVALID_TAR', `${file}: tar header ${what} out of range`)
    return v
  }
  const s = buf.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim()
  if (s === '') return 0
  if (!/^[0-7]+$/.test(s)) throw new LadingError('INVALID_TAR', `${file}: tar header ${what} is not octal: ${quoteName(s)}`)
  return parseInt(s, 8)
}

function cString(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off)
  return buf.toString('utf8', off, end >= 0 && end < off + len ? end : off + len)
}

function checksumOk(h: Buffer, file: string): boolean {
  const stored = readOctal(h, 148, 8, 'checksum', file)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!
  return sum === stored
}

/** pax extended header records: "LEN key=value\n" (POSIX pax format). */
function parsePax(data: Buffer, file: string): Record<string, string> {
  const out: Record<string, string> = {}
  let i = 0
  while (i < data.length) {
    const sp = data.indexOf(0x20, i)
    if (sp < 0) break
    const len = Number(data.toString('latin1', i, sp))
    if (!Number.isInteger(len) || len <= sp - i || i + len > data.length) throw new LadingError('INVALID_TAR', `${file}: malformed pax header record`)
    const rec = data.toString('utf8', sp + 1, i + len - 1)
    const eq = rec.indexOf('=')
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1)
    i += len
  }
  return out
}

export class TarIndex {
  readonly file: string
  readonly #entries = new Map<string, Member | Link>()
  readonly #order: string[] = []

  private constructor(file: string) { this.file = file }

  /** Index an uncompressed tar file. INVALID_TAR names the archive and the problem. */
  static async open(file: string, label = file): Promise<TarIndex> {
    const idx = new TarIndex(file)
    const fh = await fsp.open(file, 'r')
    try {
      const { size: fileSize } = await fh.stat()
      const h = Buffer.alloc(BLOCK)
      let off = 0
      let paxPath: string | undefined
      let paxSize: number | undefined
      let paxLink: string | undefined
      let longName: string | undefined
      let longLink: string | undefined
      const readData = async (start: number, n: number, what: string): Promise<Buffer> => {
        if (n > MAX_META_BYTES) throw new LadingError('INVALID_TAR', `${label}: ${what} larger than ${MAX_META_BYTES} bytes`)
        const b = Buffer.alloc(n)
        const { bytesRead } = await fh.read(b, 0, n, start)
        if (bytesRead !== n) throw new LadingError('INVALID_TAR', `${label}: truncated ${what}`)
        return b
      }
      for (;;) {
        if (off + BLOCK > fileSize) {
          if (off === fileSize) break // no end-of-archive blocks: accepted, as GNU tar does
          throw new LadingError('INVALID_TAR', `${label}: truncated tar header at offset ${off}`)
        }
        const { bytesRead } = await fh.read(h, 0, BLOCK, off)
        if (bytesRead !== BLOCK) throw new LadingError('INVALID_TAR', `${label}: truncated tar header at offset ${off}`)
        if (h.every((b) => b === 0)) break // end of archive
        if (!checksumOk(h, label)) throw new LadingError('INVALID_TAR', `${label}: bad tar header checksum at offset ${off}`)
        const type = String.fromCharCode(h[156]!)
        const size = paxSize ?? readOctal(h, 124, 12, 'size', label)
        const dataStart = off + BLOCK
        if (dataStart + size > fileSize) throw new LadingError('INVALID_TAR', `${label}: member at offset ${off} claims ${size} bytes past the end of the archive`)
        const next = dataStart + Math.ceil(size / BLOCK) * BLOCK
        if (type === 'x') {
          const pax = parsePax(await readData(dataStart, size, 'pax header'), label)
          paxPath = pax.path
          paxLink = pax.linkpath
          if (pax.size !== undefined) {
            if (!/^\d{1,15}$/.test(pax.size)) throw new LadingError('INVALID_TAR', `${label}: invalid pax size ${quoteName(pax.size)}`)
            paxSize = Number(pax.size)
          }
          off = next
          continue
        }
        if (type === 'L' || type === 'K') {
          const s = (await readData(dataStart, size, 'GNU long name')).toString('utf8').replace(/\0+$/, '')
          if (type === 'L') longName = s
          else longLink = s
          off = next
          continue
        }
        if (type !== 'g') {
          const prefix = h.toString('latin1', 257, 263) === 'ustar\0' ? cString(h, 345, 155) : ''
          const raw = paxPath ?? longName ?? (prefix ? `${prefix}/${cString(h, 0, 100)}` : cString(h, 0, 100))
          const link = paxLink ?? longLink ?? cString(h, 157, 100)
          const name = normalizeMemberName(raw)
          if (name !== undefined) {
            if (idx.#entries.size >= MAX_ENTRIES) throw new LadingError('INVALID_TAR', `${label}: more than ${MAX_ENTRIES} entries`)
            if (type === '0' || type === '\0' || type === '7') idx.#put(name, { kind: 'file', offset: dataStart, size })
            else if (type === '2') idx.#put(name, { kind: 'symlink', target: link })
            else if (type === '1') idx.#put(name, { kind: 'hardlink', target: link })
            else idx.#entries.delete(name) // a directory or special file shadows an earlier member
          }
        }
        paxPath = paxSize = paxLink = longName = longLink = undefined
        off = next
      }
    } finally {
      await fh.close()
    }
    return idx
  }

  #put(name: string, e: Member | Link): void {
    if (!this.#entries.has(name)) this.#order.push(name)
    this.#entries.set(name, e) // a later member with the same name replaces the earlier one, as extraction would
  }

  /** Member names in archive order (regular files and links). */
  names(): string[] { return this.#order.filter((n) => this.#entries.has(n)) }

  /** The regular file a name refers to, following links inside the archive (at most 16 hops). */
  lookup(name: string): { offset: number; size: number } | undefined {
    let n = normalizeMemberName(name)
    for (let hops = 0; n !== undefined && hops < 16; hops++) {
      const e = this.#entries.get(n)
      if (e === undefined) return undefined
      if (e.kind === 'file') return e
      n = e.kind === 'hardlink'
        ? normalizeMemberName(e.target)
        : normalizeMemberName(e.target.startsWith('/') ? e.target : `${path.posix.dirname(n)}/${e.target}`)
    }
    return undefined
  }

  has(name: string): boolean { return this.lookup(name) !== undefined }

  /** The member's bytes as a stream of a file range. NOT_FOUND if absent. */
  open(name: string): Readable {
    const m = this.lookup(name)
    if (!m) throw new LadingError('NOT_FOUND', `${this.file}: no member ${quoteName(name)} in the archive`)
    if (m.size === 0) return Readable.from([])
    return createReadStream(this.file, { start: m.offset, end: m.offset + m.size - 1 })
  }

  /** A small member (JSON) read whole, refusing more than `max` bytes. */
  async read(name: string, max: number): Promise<Buffer> {
    const m = this.lookup(name)
    if (!m) throw new LadingError('NOT_FOUND', `${this.file}: no member ${quoteName(name)} in the archive`)
    if (m.size > max) throw new LadingError('SIZE_LIMIT', `${this.file}: member ${name} is ${m.size} bytes, larger than the limit of ${max}`)
    return readAllLimited(this.open(name), max, `${this.file}: ${name}`)
  }
}
