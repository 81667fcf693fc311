/**
 * A random-access view of an uncompressed tar file: one pass over the headers records where each
 * regular file's bytes are, so an archive transport can serve any member as a file range without
 * extracting the archive or holding a layer in memory.
 *
 * The archive is untrusted: headers are decoded by the layer reader's codec (layer/tar-header.ts,
 * with its strict numeric fields and pax records), header checksums are checked, sizes are bounded by the file size, the
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
import { BLOCK_SIZE as BLOCK, Header, PaxKey, TypeFlag } from '../../layer/tar-constants.js'
import {
  checksumOk,
  fieldNumber,
  fieldString,
  headerName,
  headerTypeflag,
  isZeroBlock,
  longNameText,
  padding,
  parsePax,
  paxInt,
} from '../../layer/tar-header.js'
const MAX_ENTRIES = 1_000_000
const MAX_META_BYTES = 1024 * 1024

interface Member {
  kind: 'file'
  offset: number
  size: number
}
interface Link {
  kind: 'symlink' | 'hardlink'
  target: string
}

/** Canonical member name: no leading `./` or `/`, no empty or `.` components; undefined if it climbs out. */
export function normalizeMemberName(name: string): string | undefined {
  const n = path.posix.normalize(name.replace(/^\/+/, '')).replace(/\/+$/, '')
  if (n === '' || n === '.' || n === '..' || n.startsWith('../')) return undefined
  return n
}

export class TarIndex {
  readonly file: string
  readonly #entries = new Map<string, Member | Link>()
  readonly #order: string[] = []

  private constructor(file: string) {
    this.file = file
  }

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
        if (isZeroBlock(h)) break // end of archive
        const where = (): string => `${label}: tar header at offset ${off}`
        if (!checksumOk(h, fieldNumber(h, Header.checksum.offset, Header.checksum.length, 'checksum', where))) {
          throw new LadingError('INVALID_TAR', `${label}: bad tar header checksum at offset ${off}`)
        }
        const type = headerTypeflag(h)
        const size = paxSize ?? fieldNumber(h, Header.size.offset, Header.size.length, 'size', where)
        const dataStart = off + BLOCK
        if (dataStart + size > fileSize)
          throw new LadingError('INVALID_TAR', `${label}: member at offset ${off} claims ${size} bytes past the end of the archive`)
        const next = dataStart + size + padding(size)
        if (type === TypeFlag.PaxHeader) {
          // Records in order; a later record of the same key wins (POSIX pax), an empty value
          // deletes the keyword's effect, as the layer reader reads them.
          for (const [key, v] of parsePax(await readData(dataStart, size, 'pax header'), `${label}: pax header at offset ${off}`)) {
            const value = v.length === 0 ? undefined : v
            if (key === PaxKey.Path) paxPath = value?.toString('utf8')
            else if (key === PaxKey.LinkPath) paxLink = value?.toString('utf8')
            else if (key === PaxKey.Size) paxSize = value === undefined ? undefined : paxInt(value, key, `${label}: pax header at offset ${off}`)
          }
          off = next
          continue
        }
        if (type === TypeFlag.GnuLongName || type === TypeFlag.GnuLongLink) {
          const s = longNameText(await readData(dataStart, size, 'GNU long name'))
          if (type === TypeFlag.GnuLongName) longName = s
          else longLink = s
          off = next
          continue
        }
        if (type !== TypeFlag.PaxGlobalHeader) {
          const raw = paxPath ?? longName ?? headerName(h)
          const link = paxLink ?? longLink ?? fieldString(h, Header.linkname.offset, Header.linkname.length)
          const name = normalizeMemberName(raw)
          if (name !== undefined) {
            if (idx.#entries.size >= MAX_ENTRIES) throw new LadingError('INVALID_TAR', `${label}: more than ${MAX_ENTRIES} entries`)
            if (type === TypeFlag.File || type === TypeFlag.FileOld || type === TypeFlag.Contiguous) idx.#put(name, { kind: 'file', offset: dataStart, size })
            else if (type === TypeFlag.Symlink) idx.#put(name, { kind: 'symlink', target: link })
            else if (type === TypeFlag.Hardlink) idx.#put(name, { kind: 'hardlink', target: link })
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
  names(): string[] {
    return this.#order.filter((n) => this.#entries.has(n))
  }

  /** The regular file a name refers to, following links inside the archive (at most 16 hops). */
  lookup(name: string): { offset: number; size: number } | undefined {
    let n = normalizeMemberName(name)
    for (let hops = 0; n !== undefined && hops < 16; hops++) {
      const e = this.#entries.get(n)
      if (e === undefined) return undefined
      if (e.kind === 'file') return e
      n =
        e.kind === 'hardlink'
          ? normalizeMemberName(e.target)
          : normalizeMemberName(e.target.startsWith('/') ? e.target : `${path.posix.dirname(n)}/${e.target}`)
    }
    return undefined
  }

  has(name: string): boolean {
    return this.lookup(name) !== undefined
  }

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
