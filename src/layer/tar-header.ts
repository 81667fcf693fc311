/**
 * The one tar header and pax codec: encoding and decoding of ustar header blocks (POSIX.1-2001,
 * IEEE Std 1003.1 "pax" utility, §ustar Interchange Format), GNU base-256 numbers and long-name
 * bodies, and pax extended header records (§pax Extended Header). The layer reader
 * (tar-reader.ts), the layer writer (tar-writer.ts), the id remapper (bundle/id-remap.ts) and the
 * archive transports (transport/archive/: the tar index and the archive writers) all use this
 * module, so a header is read and written one way everywhere, with the reader's strict checks.
 *
 * Contract: decoders take untrusted bytes and either return a value or throw LadingError
 * INVALID_TAR naming `where`; they never return a negative or unsafe-integer number unless asked
 * (a time may be before 1970). Encoders are pure and deterministic (no clock, no user database):
 * the same entry always gives the same bytes.
 */
import { LadingError } from '../errors.js'
import { BLOCK_SIZE, END_OF_ARCHIVE_BLOCKS, GNU_MAGIC, Header, TypeFlag, USTAR_MAGIC, USTAR_VERSION } from './tar-constants.js'

/** A header field's place in the block (one of tar-constants' `Header` entries, or a sparse slot). */
export interface HeaderField {
  offset: number
  length: number
}

export function invalid(message: string, cause?: unknown): LadingError {
  return new LadingError('INVALID_TAR', message, cause === undefined ? undefined : { cause })
}

/** Bytes of zero padding after `n` bytes of data, up to the next block boundary. */
export function padding(n: number): number {
  const r = n % BLOCK_SIZE
  return r === 0 ? 0 : BLOCK_SIZE - r
}

/** Two zero blocks end an archive (POSIX ustar). */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK_SIZE * END_OF_ARCHIVE_BLOCKS)
const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE)

// ---- decoding ----

/** Text of a NUL-terminated header field. */
export function fieldString(block: Buffer, offset: number, length: number): string {
  let end = offset
  const limit = offset + length
  while (end < limit && block[end] !== 0) end++
  return block.toString('utf8', offset, end)
}

/**
 * A numeric header field: octal text (leading spaces/NULs allowed, terminated by space or NUL), or
 * GNU base-256 (first byte 0x80 positive / 0xff negative, big-endian two's complement).
 * Negative or unsafe-integer values are refused for every field we use.
 */
export function fieldNumber(block: Buffer, offset: number, length: number, what: string, where: () => string, allowNegative = false): number {
  const first = block[offset]!
  if (first & 0x80) {
    if (first === 0xff) {
      // Negative (two's complement over the whole field): only a time may be before 1970.
      if (!allowNegative) throw invalid(`${where()}: negative base-256 ${what}`)
      let v = 0n
      for (let i = offset; i < offset + length; i++) v = (v << 8n) | BigInt(block[i]!)
      v -= 1n << BigInt(8 * length)
      if (v < -BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${where()}: ${what} ${v} is too small`)
      return Number(v)
    }
    if (first !== 0x80) throw invalid(`${where()}: invalid base-256 marker in ${what}`)
    let v = 0n
    for (let i = offset + 1; i < offset + length; i++) v = (v << 8n) | BigInt(block[i]!)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${where()}: ${what} ${v} is too large`)
    return Number(v)
  }
  let i = offset
  const end = offset + length
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++
  let v = 0
  let digits = 0
  for (; i < end; i++) {
    const c = block[i]!
    if (c === 0x20 || c === 0) break
    if (c < 0x30 || c > 0x37) throw invalid(`${where()}: invalid octal digit in ${what} field`)
    v = v * 8 + (c - 0x30)
    digits++
  }
  // Only trailing spaces/NULs may follow the digits.
  for (; i < end; i++) {
    const c = block[i]!
    if (c !== 0x20 && c !== 0) throw invalid(`${where()}: garbage after ${what} field`)
  }
  if (digits > 17) throw invalid(`${where()}: ${what} field too long`)
  return v
}

/** Checksum per POSIX ustar: the sum of all header bytes with the checksum field read as spaces. */
export function checksumOk(block: Buffer, stored: number): boolean {
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!
    unsigned += b
    signed += b > 127 ? b - 256 : b
  }
  // Some historic writers summed signed chars; accept either, as GNU tar and Go do.
  return stored === unsigned || stored === signed
}

export function isZeroBlock(block: Buffer): boolean {
  return block.equals(ZERO_BLOCK)
}

export type HeaderFormat = 'ustar' | 'gnu' | 'v7'

/** Which dialect wrote the block: POSIX ustar ("ustar\0"), GNU ("ustar "), or pre-POSIX v7. */
export function headerFormat(block: Buffer): HeaderFormat {
  const magic = block.toString('latin1', Header.magic.offset, Header.magic.offset + Header.magic.length)
  return magic === USTAR_MAGIC ? 'ustar' : magic === GNU_MAGIC ? 'gnu' : 'v7'
}

/** The member name of a header block: ustar joins `prefix/name`; GNU and v7 have no prefix field. */
export function headerName(block: Buffer, format: HeaderFormat = headerFormat(block)): string {
  const name = fieldString(block, Header.name.offset, Header.name.length)
  if (format !== 'ustar') return name
  const prefix = fieldString(block, Header.prefix.offset, Header.prefix.length)
  return prefix === '' ? name : `${prefix}/${name}`
}

/** The raw type flag byte as a one-character string. */
export function headerTypeflag(block: Buffer): string {
  return String.fromCharCode(block[Header.typeflag.offset]!)
}

/** Is this a metadata header (pax 'x'/'g', GNU long name/link 'L'/'K') that describes the next entry? */
export function isMetaTypeflag(typeflag: string): boolean {
  return typeflag === TypeFlag.PaxHeader || typeflag === TypeFlag.PaxGlobalHeader || typeflag === TypeFlag.GnuLongName || typeflag === TypeFlag.GnuLongLink
}

/** Verify a header block's checksum field; INVALID_TAR (`where`: bad header checksum) when it fails. */
export function checkHeaderChecksum(block: Buffer, where: () => string): void {
  const stored = fieldNumber(block, Header.checksum.offset, Header.checksum.length, 'checksum', where)
  if (!checksumOk(block, stored)) throw invalid(`${where()}: bad header checksum (not a tar archive, or corrupted)`)
}

/** The text of a GNU long name / long link body ('L' / 'K'): up to the first NUL. */
export function longNameText(body: Buffer): string {
  let end = body.indexOf(0)
  if (end < 0) end = body.length
  return body.toString('utf8', 0, end)
}

/** pax records, in order (order matters for GNU.sparse 0.0's repeated offset/numbytes pairs). */
export type PaxRecords = Array<[string, Buffer]>

/** Parse a pax extended header body: records `LEN KEY=VALUE\n`, LEN counting the whole record. */
export function parsePax(body: Buffer, where: string): PaxRecords {
  const out: PaxRecords = []
  let pos = 0
  while (pos < body.length) {
    // GNU tar pads with NULs in some versions; trailing NULs end the records.
    if (body[pos] === 0) {
      for (let i = pos; i < body.length; i++) if (body[i] !== 0) throw invalid(`${where}: NUL inside pax header`)
      break
    }
    let sp = pos
    let len = 0
    while (sp < body.length && body[sp] !== 0x20) {
      const c = body[sp]!
      if (c < 0x30 || c > 0x39 || sp - pos > 9) throw invalid(`${where}: malformed pax record length at byte ${pos}`)
      len = len * 10 + (c - 0x30)
      sp++
    }
    if (sp === pos || sp >= body.length) throw invalid(`${where}: malformed pax record at byte ${pos}`)
    const end = pos + len
    if (len <= sp - pos + 1 || end > body.length || body[end - 1] !== 0x0a) {
      throw invalid(`${where}: pax record at byte ${pos} has an impossible length ${len}`)
    }
    const eq = body.indexOf(0x3d, sp + 1)
    if (eq < 0 || eq >= end - 1 || eq === sp + 1) throw invalid(`${where}: pax record at byte ${pos} has no key=value`)
    const key = body.toString('utf8', sp + 1, eq)
    out.push([key, body.subarray(eq + 1, end - 1)])
    pos = end
  }
  return out
}

export const DECIMAL_INT = /^\d{1,16}$/
const DECIMAL_TIME = /^-?\d{1,16}(\.\d{0,19})?$/

export function paxInt(v: Buffer, key: string, where: string): number {
  const s = v.toString('latin1')
  if (!DECIMAL_INT.test(s)) throw invalid(`${where}: pax ${key}=${JSON.stringify(s.slice(0, 40))} is not a non-negative integer`)
  const n = Number(s)
  if (!Number.isSafeInteger(n)) throw invalid(`${where}: pax ${key} ${s} is too large`)
  return n
}

export function paxTime(v: Buffer, key: string, where: string): number {
  const s = v.toString('latin1')
  if (!DECIMAL_TIME.test(s)) throw invalid(`${where}: pax ${key}=${JSON.stringify(s.slice(0, 40))} is not a time`)
  return Number(s)
}

// ---- encoding ----

/** An octal field: zero-padded digits and a NUL (the caller checks that the value fits). */
export function writeOctal(buf: Buffer, field: HeaderField, value: number | bigint): void {
  const s = value.toString(8).padStart(field.length - 1, '0')
  buf.write(s, field.offset, field.length - 1, 'latin1')
  buf[field.offset + field.length - 1] = 0
}

/** GNU base-256: high bit of the first byte set, the rest a big-endian two's complement number. */
export function writeBase256(buf: Buffer, field: HeaderField, value: number): void {
  let v = BigInt(value)
  for (let i = field.length - 1; i >= 1; i--) {
    buf[field.offset + i] = Number(v & 0xffn)
    v >>= 8n
  }
  buf[field.offset] = 0x80
}

/** One pax extended header record (POSIX pax: "%d %s=%s\n", the length counting itself). */
export function paxRecord(key: string, value: Buffer): Buffer {
  // "%d %s=%s\n" where %d counts the whole record including its own digits.
  const rest = Buffer.byteLength(key) + value.length + 3 // ' ' '=' '\n'
  const digits = String(rest).length
  let len = rest + digits
  if (String(len).length > digits) len = rest + digits + 1
  const head = Buffer.from(`${len} ${key}=`, 'utf8')
  return Buffer.concat([head, value, Buffer.from('\n')])
}

/** Split `name` into ustar (prefix, name) fields, or undefined if it cannot fit. */
export function splitUstarName(name: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  if (name.length <= 100) return { prefix: Buffer.alloc(0), name }
  const max = Math.min(155, name.length - 2)
  for (let i = max; i >= 0; i--) {
    if (name[i] !== 0x2f) continue
    const rest = name.length - i - 1
    if (rest > 100) return undefined
    if (rest === 0) continue
    return { prefix: name.subarray(0, i), name: name.subarray(i + 1) }
  }
  return undefined
}

/**
 * One ustar header block (magic "ustar\0", version "00") with its checksum. Numbers are octal;
 * the caller moves what does not fit (long names, big sizes and ids) into pax records first.
 */
export function encodeUstarHeader(f: {
  name: Buffer
  prefix: Buffer
  mode: number
  uid: number
  gid: number
  size: number | bigint
  mtime: number | bigint
  typeflag: string
  linkname: Buffer
  devmajor: number
  devminor: number
}): Buffer {
  const h = Buffer.alloc(BLOCK_SIZE)
  f.name.copy(h, Header.name.offset, 0, Header.name.length)
  writeOctal(h, Header.mode, f.mode)
  writeOctal(h, Header.uid, f.uid)
  writeOctal(h, Header.gid, f.gid)
  writeOctal(h, Header.size, f.size)
  writeOctal(h, Header.mtime, f.mtime)
  h.write(f.typeflag, Header.typeflag.offset, 1, 'latin1')
  f.linkname.copy(h, Header.linkname.offset, 0, Header.linkname.length)
  h.write(USTAR_MAGIC, Header.magic.offset, 6, 'latin1')
  h.write(USTAR_VERSION, Header.version.offset, 2, 'latin1')
  writeNumber(h, Header.devmajor, f.devmajor)
  writeNumber(h, Header.devminor, f.devminor)
  f.prefix.copy(h, Header.prefix.offset, 0, Header.prefix.length)
  writeHeaderChecksum(h)
  return h
}

/** Checksum: the sum of all header bytes with the checksum field read as spaces; 6 octal digits, NUL, space. */
export function writeHeaderChecksum(h: Buffer): void {
  h.fill(0x20, Header.checksum.offset, Header.checksum.offset + Header.checksum.length)
  let sum = 0
  for (let i = 0; i < BLOCK_SIZE; i++) sum += h[i]!
  h.write(sum.toString(8).padStart(6, '0'), Header.checksum.offset, 6, 'latin1')
  h[Header.checksum.offset + 6] = 0
  h[Header.checksum.offset + 7] = 0x20
}

/** An octal field, or GNU base-256 when the value does not fit its octal digits (ids, device numbers, sizes). */
export function writeNumber(buf: Buffer, field: HeaderField, value: number): void {
  if (value.toString(8).length < field.length) writeOctal(buf, field, value)
  else writeBase256(buf, field, value)
}
