/**
 * Test-only tar builder: writes ustar / GNU headers, pax records and raw (possibly hostile) fields
 * so reader and applier tests can build exactly the archive they need in code.
 */
import { Readable } from 'node:stream'

export interface TarSpec {
  name: string
  /** Type flag; default '0' (or '5' when the name ends in '/'). */
  type?: string
  mode?: number
  uid?: number
  gid?: number
  mtime?: number
  linkname?: string
  data?: Buffer | string
  /** Size field override (default data length). */
  size?: number
  devmajor?: number
  devminor?: number
  /** pax records for an 'x' header emitted before this entry. */
  pax?: Record<string, string | Buffer>
  /** 'gnu' writes the "ustar  \0" magic (no prefix field). */
  magic?: 'ustar' | 'gnu' | 'v7'
  /** Raw 12-byte size field (e.g. base-256 or garbage). */
  rawSize?: Buffer
  /** Raw 8-byte uid field. */
  rawUid?: Buffer
  /** Corrupt the checksum. */
  badChecksum?: boolean
  /** Split a long name into the ustar prefix field. */
  prefix?: string
}

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, '0') + '\0'
}

export function header(s: TarSpec): Buffer {
  const b = Buffer.alloc(512)
  const data = s.data === undefined ? Buffer.alloc(0) : Buffer.from(s.data)
  const type = s.type ?? (s.name.endsWith('/') ? '5' : '0')
  b.write(s.name, 0, 100, 'utf8')
  b.write(octal(s.mode ?? (type === '5' ? 0o755 : 0o644), 8), 100, 'latin1')
  if (s.rawUid) s.rawUid.copy(b, 108)
  else b.write(octal(s.uid ?? 0, 8), 108, 'latin1')
  b.write(octal(s.gid ?? 0, 8), 116, 'latin1')
  if (s.rawSize) s.rawSize.copy(b, 124)
  else b.write(octal(s.size ?? data.length, 12), 124, 'latin1')
  b.write(octal(s.mtime ?? 1700000000, 12), 136, 'latin1')
  b.write(type, 156, 'latin1')
  if (s.linkname !== undefined) b.write(s.linkname, 157, 100, 'utf8')
  const magic = s.magic ?? 'ustar'
  if (magic === 'ustar') b.write('ustar\u000000', 257, 'latin1')
  else if (magic === 'gnu') b.write('ustar  \0', 257, 'latin1')
  if (magic !== 'v7') {
    b.write('root', 265, 'latin1')
    b.write('root', 297, 'latin1')
    b.write(octal(s.devmajor ?? 0, 8), 329, 'latin1')
    b.write(octal(s.devminor ?? 0, 8), 337, 'latin1')
  }
  if (s.prefix !== undefined) b.write(s.prefix, 345, 155, 'utf8')
  b.fill(0x20, 148, 156)
  let sum = 0
  for (const x of b) sum += x
  if (s.badChecksum) sum += 1
  b.write(octal(sum, 7) + ' ', 148, 'latin1')
  return b
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512)
}

/** pax records body: each `LEN key=value\n` with LEN counting itself. */
export function paxBody(records: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = []
  for (const [k, v] of Object.entries(records)) {
    const value = Buffer.from(v)
    const rest = Buffer.byteLength(` ${k}=`) + value.length + 1
    let len = rest + 1
    while (String(len).length + rest !== len) len = String(len).length + rest
    parts.push(Buffer.concat([Buffer.from(`${len} ${k}=`), value, Buffer.from('\n')]))
  }
  return Buffer.concat(parts)
}

/** One entry: optional pax header, header, data, padding. */
export function entry(s: TarSpec): Buffer {
  const parts: Buffer[] = []
  if (s.pax !== undefined) {
    const body = paxBody(s.pax)
    parts.push(header({ name: `PaxHeaders/${s.name.slice(0, 80)}`, type: 'x', data: body }), body, pad(body.length))
  }
  const data = s.data === undefined ? Buffer.alloc(0) : Buffer.from(s.data)
  parts.push(header(s), data, pad(data.length))
  return Buffer.concat(parts)
}

/** A whole archive (with the two zero blocks unless `end` is false). */
export function buildTar(specs: TarSpec[], opts: { end?: boolean } = {}): Buffer {
  const parts = specs.map(entry)
  if (opts.end !== false) parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

/** A readable stream of `buf` in chunks of `chunk` bytes (to exercise boundaries). */
export function streamOf(buf: Buffer, chunk = 700): Readable {
  const chunks: Buffer[] = []
  for (let i = 0; i < buf.length; i += chunk) chunks.push(buf.subarray(i, i + chunk))
  return Readable.from(chunks)
}
