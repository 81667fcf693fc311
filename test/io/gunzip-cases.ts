/**
 * The gzip streams both decoders are run on (test/io/gunzip.test.ts): built deterministically, so
 * that a child process with LADING_GUNZIP=zlib builds the very same bytes and its results can be
 * compared with this process's native ones, case by case.
 */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import zlib from 'node:zlib'
import { isLadingError } from '../../src/errors.js'
import { decompress } from '../../src/io/compression.js'
import { ParallelGzip } from '../../src/io/gzip-parallel.js'

/** Tar-like data, compressible but not trivially: a seeded generator, the same in every process. */
export function sampleData(bytes: number, seed = 7): Buffer {
  const words = ['usr/lib/x86_64-linux-gnu/', 'libc.so.6', '\0\0\0\0\0\0\0\0', 'ustar  ', '0000644', '\n', 'root']
  const out = Buffer.alloc(bytes)
  let s = seed
  let i = 0
  while (i < bytes) {
    s = (s * 1103515245 + 12345) & 0x7fffffff
    if (s % 11 === 0) {
      for (let k = 0; k < 48 && i < bytes; k++) {
        s = (s * 1103515245 + 12345) & 0x7fffffff
        out[i++] = s >>> 16
      }
    } else {
      i += out.write(words[s % words.length]!, i, 'latin1')
    }
  }
  return out
}

/** RFC 1952 §2.3.1 FLG bits. */
export const FHCRC = 0x02
export const FEXTRA = 0x04
export const FNAME = 0x08
export const FCOMMENT = 0x10

/**
 * One gzip member whose header carries every optional field (or those in `flags`) (RFC 1952 §2.3.1: FEXTRA, FNAME,
 * FCOMMENT, FHCRC with the CRC-32 of the header's bytes), as some tools write them.
 */
export function fullHeaderMember(data: Buffer, flags = FHCRC | FEXTRA | FNAME | FCOMMENT): Buffer {
  const raw = zlib.deflateRawSync(data)
  const extra = Buffer.from('AB\x04\x00wxyz', 'latin1')
  const parts = [Buffer.from([0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3])]
  if (flags & FEXTRA) parts.push(Buffer.from([extra.length, 0]), extra)
  if (flags & FNAME) parts.push(Buffer.from('layer.tar\0', 'latin1'))
  if (flags & FCOMMENT) parts.push(Buffer.from('comment\0', 'latin1'))
  if (flags & FHCRC) {
    const hcrc = Buffer.alloc(2)
    hcrc.writeUInt16LE(zlib.crc32(Buffer.concat(parts)) & 0xffff)
    parts.push(hcrc)
  }
  const trailer = Buffer.alloc(8)
  trailer.writeUInt32LE(zlib.crc32(data) >>> 0, 0)
  trailer.writeUInt32LE(data.length >>> 0, 4)
  return Buffer.concat([...parts, raw, trailer])
}

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b)
  c[at] = c[at]! ^ 0x01
  return c
}

export interface GunzipCase {
  name: string
  gz: Buffer
  /** Fed to the decoder in chunks of this many bytes. */
  chunk: number
}

export async function buildCases(): Promise<GunzipCase[]> {
  const data = sampleData(3_000_000)
  const single = zlib.gzipSync(data, { level: 6 })
  const parallel = await buffer(Readable.from([sampleData(3_500_000, 11)]).pipe(new ParallelGzip({ level: 4 })))
  const small = zlib.gzipSync(sampleData(5000, 3))
  const empty = zlib.gzipSync(Buffer.alloc(0))
  const full = fullHeaderMember(sampleData(70_000, 5))
  return [
    { name: 'single member', gz: single, chunk: 1 << 20 },
    { name: 'multi-member from ParallelGzip', gz: parallel, chunk: 1 << 20 },
    { name: 'an empty member alone', gz: empty, chunk: 1 << 20 },
    { name: 'an empty member between two others', gz: Buffer.concat([small, empty, small]), chunk: 1 << 20 },
    { name: 'single member fed in 64 KiB chunks', gz: single, chunk: 64 * 1024 },
    { name: 'multi-member fed in 7-byte chunks (headers split)', gz: Buffer.concat([small, full, small]), chunk: 7 },
    { name: 'header with FEXTRA, FNAME, FCOMMENT and FHCRC', gz: full, chunk: 1 << 20 },
    { name: 'zero padding after the last member', gz: Buffer.concat([small, Buffer.alloc(1000)]), chunk: 300 },
    { name: 'error: truncated in the deflate data', gz: single.subarray(0, single.length >> 1), chunk: 1 << 20 },
    { name: 'error: truncated in the trailer', gz: small.subarray(0, small.length - 3), chunk: 1 << 20 },
    { name: 'error: truncated in the second member header', gz: Buffer.concat([small, small.subarray(0, 5)]), chunk: 1 << 20 },
    { name: 'error: corrupt CRC-32', gz: flip(single, single.length - 8), chunk: 1 << 20 },
    { name: 'error: corrupt ISIZE', gz: flip(single, single.length - 2), chunk: 1 << 20 },
    { name: 'error: corrupt CRC-32 of a middle member', gz: Buffer.concat([small, flip(small, small.length - 6), small]), chunk: 4096 },
    { name: 'error: trailing garbage', gz: Buffer.concat([single, Buffer.from('not gzip at all')]), chunk: 1 << 20 },
    { name: 'error: corrupt deflate data', gz: flip(flip(single, 100), 200), chunk: 1 << 20 },
    { name: 'error: unknown compression method', gz: flip(small, 2), chunk: 1 << 20 },
    { name: 'error: reserved header flags in the second member', gz: Buffer.concat([small, Buffer.from([0x1f, 0x8b, 8, 0x20]), small.subarray(4)]), chunk: 3 },
    { name: 'error: corrupt header CRC (FHCRC)', gz: Buffer.concat([small, flip(full, 32)]), chunk: 5 },
  ]
}

export type CaseResult = { name: string; sha256: string; bytes: number } | { name: string; code: string; message: string }

/** Each case through decompress() (whichever gzip decoder it picks): the output's digest or the error. */
export async function decodeAll(cases: GunzipCase[]): Promise<CaseResult[]> {
  const results: CaseResult[] = []
  for (const c of cases) {
    const parts: Buffer[] = []
    for (let i = 0; i < c.gz.length; i += c.chunk) parts.push(c.gz.subarray(i, i + c.chunk))
    try {
      const out = await buffer(await decompress(Readable.from(parts, { objectMode: false }), 'gzip', 'case'))
      results.push({ name: c.name, sha256: createHash('sha256').update(out).digest('hex'), bytes: out.length })
    } catch (e) {
      results.push({ name: c.name, code: isLadingError(e) ? e.code : `not a LadingError: ${String(e)}`, message: (e as Error).message })
    }
  }
  return results
}
