/**
 * The one tar header and pax codec (src/layer/tar-header.ts): what it encodes decodes back, and
 * its decoders refuse what the layer reader refuses. The reader, the writer, the id remapper and
 * the archive index all stand on these functions.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isLadingError } from '../../src/errors.js'
import { BLOCK_SIZE, Header, MAX_OCTAL_ID, MAX_OCTAL_SIZE } from '../../src/layer/tar-constants.js'
import {
  checkHeaderChecksum,
  encodeUstarHeader,
  fieldNumber,
  headerFormat,
  headerName,
  headerTypeflag,
  longNameText,
  padding,
  parsePax,
  paxRecord,
  splitUstarName,
  writeHeaderChecksum,
  writeNumber,
} from '../../src/layer/tar-header.js'

const where = (): string => 'test header'

function header(name: string, extra: Partial<Parameters<typeof encodeUstarHeader>[0]> = {}): Buffer {
  const bytes = Buffer.from(name)
  const split = splitUstarName(bytes)
  assert.ok(split, `${name} fits ustar`)
  return encodeUstarHeader({
    name: split.name,
    prefix: split.prefix,
    mode: 0o755,
    uid: 1000,
    gid: 100,
    size: 12345,
    mtime: 1_700_000_000,
    typeflag: '0',
    linkname: Buffer.from('target'),
    devmajor: 0,
    devminor: 0,
    ...extra,
  })
}

function invalidTar(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => isLadingError(e, 'INVALID_TAR') && re.test((e as Error).message))
}

test('tar-header: an encoded ustar header decodes back (prefix/name split, numbers, type, checksum)', () => {
  const long = `${'dir/'.repeat(30)}file.txt` // 128 bytes: needs the prefix field
  const h = header(long)
  assert.equal(h.length, BLOCK_SIZE)
  assert.equal(headerFormat(h), 'ustar')
  assert.equal(headerName(h), long)
  assert.equal(headerTypeflag(h), '0')
  checkHeaderChecksum(h, where)
  const num = (f: { offset: number; length: number }, what: string): number => fieldNumber(h, f.offset, f.length, what, where)
  assert.deepEqual(
    [num(Header.mode, 'mode'), num(Header.uid, 'uid'), num(Header.gid, 'gid'), num(Header.size, 'size'), num(Header.mtime, 'mtime')],
    [0o755, 1000, 100, 12345, 1_700_000_000],
  )
  // A flipped byte anywhere is caught by the checksum.
  h.writeUInt8(h.readUInt8(10) ^ 1, 10)
  invalidTar(() => checkHeaderChecksum(h, where), /test header: bad header checksum/)
})

test('tar-header: a name with no slash to split at does not fit ustar', () => {
  assert.equal(splitUstarName(Buffer.from('x'.repeat(101))), undefined)
  assert.deepEqual(splitUstarName(Buffer.from('a'.repeat(100)))?.prefix.length, 0)
})

test('tar-header: writeNumber switches to GNU base-256 exactly where octal digits run out; fieldNumber reads both', () => {
  for (const [field, max] of [
    [Header.uid, MAX_OCTAL_ID],
    [Header.size, MAX_OCTAL_SIZE],
  ] as const) {
    for (const v of [0, 1, max, max + 1, 2 ** 40]) {
      const h = Buffer.alloc(BLOCK_SIZE)
      writeNumber(h, field, v)
      assert.equal((h[field.offset]! & 0x80) !== 0, v > max, `base-256 only above ${max} (value ${v})`)
      assert.equal(fieldNumber(h, field.offset, field.length, 'n', where), v)
    }
  }
})

test('tar-header: fieldNumber refuses garbage, bad base-256 markers and negatives (unless a time)', () => {
  const h = Buffer.alloc(BLOCK_SIZE)
  h.write('0017\0x\0', Header.size.offset, 'latin1')
  invalidTar(() => fieldNumber(h, Header.size.offset, Header.size.length, 'size', where), /garbage after size/)
  h.write('00178\0', Header.size.offset, 'latin1')
  invalidTar(() => fieldNumber(h, Header.size.offset, Header.size.length, 'size', where), /invalid octal digit in size/)
  h.fill(0xff, Header.size.offset, Header.size.offset + Header.size.length) // -1 in base-256
  invalidTar(() => fieldNumber(h, Header.size.offset, Header.size.length, 'size', where), /negative base-256 size/)
  assert.equal(fieldNumber(h, Header.size.offset, Header.size.length, 'mtime', where, true), -1)
  h[Header.size.offset] = 0x81
  invalidTar(() => fieldNumber(h, Header.size.offset, Header.size.length, 'size', where), /invalid base-256 marker/)
})

test('tar-header: pax records parse back at digit-count boundaries; malformed records are INVALID_TAR', () => {
  for (let n = 0; n < 1100; n += 7) {
    const value = Buffer.alloc(n, 0x61)
    const rec = paxRecord('path', value)
    assert.equal(Number(rec.toString('latin1', 0, rec.indexOf(0x20))), rec.length, 'the length counts itself')
    const [[key, v]] = parsePax(rec, 'pax') as [[string, Buffer]]
    assert.equal(key, 'path')
    assert.ok(v.equals(value))
  }
  // Binary values (SCHILY.xattr) survive.
  const bin = Buffer.from([0, 1, 0x0a, 0x3d, 0xff])
  assert.ok(parsePax(paxRecord('SCHILY.xattr.user.x', bin), 'pax')[0]![1].equals(bin))
  invalidTar(() => parsePax(Buffer.from('99 path=x\n'), 'pax'), /impossible length/)
  invalidTar(() => parsePax(Buffer.from('9 pathx\n\n'), 'pax'), /no key=value/)
  invalidTar(() => parsePax(Buffer.from('x1 a=b\n'), 'pax'), /malformed pax record length/)
  invalidTar(() => parsePax(Buffer.concat([paxRecord('a', Buffer.from('b')), Buffer.from([0, 0x41])]), 'pax'), /NUL inside pax header/)
})

test('tar-header: GNU long names end at the first NUL; padding fills to the block', () => {
  assert.equal(longNameText(Buffer.from('some/long/name\0\0junk')), 'some/long/name')
  assert.equal(longNameText(Buffer.from('no-nul')), 'no-nul')
  assert.deepEqual([0, 1, 511, 512, 513].map(padding), [0, 511, 1, 0, 511])
  // A rewritten field gets a fresh, valid checksum.
  const h = header('f')
  writeNumber(h, Header.uid, 0)
  writeHeaderChecksum(h)
  checkHeaderChecksum(h, where)
})
