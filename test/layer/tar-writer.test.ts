import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { buffer } from 'node:stream/consumers'
import { test } from 'node:test'
import { isLadingError } from '../../src/errors.js'
import { TAR_CHUNK, encodeEntryHeader, effectiveMtimeNs, sourceDateEpochNs, writeTar, type TarEntry, type TarSource } from '../../src/layer/tar-writer.js'
import { requireTool } from '../helpers/tools.js'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { listTar } from '../fixtures/tar.js'
import { tempDir } from '../fixtures/temp.js'

const exec = promisify(execFile)

const S = 1_000_000_000n
const base = (p: string, over: Partial<TarEntry> = {}): TarEntry => ({
  path: p,
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: 0,
  mtimeNs: 1_600_000_000n * S,
  ...over,
})

async function tarOf(sources: TarSource[], opts = {}): Promise<Buffer> {
  return buffer(writeTar(sources, opts))
}

test('ustar header: numeric ids, empty uname/gname, trailing slash on directories, valid checksum', async () => {
  const tar = await tarOf([
    { entry: base('d', { type: 'directory', mode: 0o1777, uid: 5, gid: 6 }) },
    { entry: base('d/f', { size: 3, mode: 0o4755 }), content: { data: Buffer.from('abc') } },
  ])
  assert.equal(tar.length % 512, 0)
  const e = await listTar(tar)
  assert.deepEqual(
    e.map((x) => [x.name, x.type, x.mode, x.uid, x.gid, x.uname, x.gname]),
    [
      ['d/', 'directory', 0o1777, 5, 6, '', ''],
      ['d/f', 'file', 0o4755, 0, 0, '', ''],
    ],
  )
  assert.equal(e[1]!.data.toString(), 'abc')
  assert.equal(e[0]!.pax, null, 'no pax header when ustar suffices')
  assert.ok(tar.subarray(tar.length - 1024).equals(Buffer.alloc(1024)), 'ends with two zero blocks')
})

test('pax headers only where needed: long path, long link, big ids, sub-second mtime when asked', async () => {
  const long = `${'a'.repeat(90)}/${'b'.repeat(90)}/${'c'.repeat(120)}`
  const splittable = `${'p'.repeat(120)}/${'n'.repeat(90)}`
  const longLink = 'l'.repeat(150)
  const tar = await tarOf(
    [
      { entry: base(long) },
      { entry: base(splittable) },
      { entry: base('sym', { type: 'symlink', linkname: longLink }) },
      { entry: base('ids', { uid: 3_000_000, gid: 4_000_000 }) },
      { entry: base('ns', { mtimeNs: 1_600_000_000n * S + 123_456_789n }) },
    ],
    { subsecondMtimes: true },
  )
  const e = await listTar(tar)
  assert.equal(e[0]!.name, long)
  assert.equal(e[0]!.pax?.['path'], long)
  assert.equal(e[1]!.name, splittable)
  assert.equal(e[1]!.pax, null, 'a path that fits the ustar prefix/name split needs no pax')
  assert.equal(e[2]!.linkname, longLink)
  assert.equal(e[3]!.pax?.['uid'], '3000000')
  assert.equal(e[3]!.pax?.['gid'], '4000000')
  assert.equal(e[4]!.pax?.['mtime'], '1600000000.123456789')
  // Without subsecondMtimes the same entry has no pax header and whole seconds.
  const plain = await listTar(await tarOf([{ entry: base('ns', { mtimeNs: 1_600_000_000n * S + 123_456_789n }) }]))
  assert.equal(plain[0]!.pax, null)
  assert.equal(plain[0]!.mtime, 1_600_000_000_000)
})

test('xattrs are written as SCHILY.xattr.* pax records with binary values', async () => {
  const cap = Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
  const hdr = encodeEntryHeader(base('bin/ping', { xattrs: { 'security.capability': cap, 'user.a': Buffer.from('b') } }))
  const text = hdr.subarray(512, 1024)
  assert.ok(text.includes(Buffer.concat([Buffer.from(' SCHILY.xattr.security.capability='), cap, Buffer.from('\n')])))
  const e = await listTar(Buffer.concat([hdr, Buffer.alloc(1024)]))
  assert.equal(e[0]!.name, 'bin/ping')
  assert.equal(e[0]!.pax?.['SCHILY.xattr.user.a'], 'b')
})

test('pax record lengths are self-consistent at digit-count boundaries', () => {
  // Walk path lengths across the point where the record length gains a digit.
  // "NNN path=<p>\n" reaches 1000 bytes for paths of about 990 bytes.
  for (let n = 800; n < 840; n++) {
    const p = `${'d'.repeat(160)}/${'x'.repeat(n)}`
    const h = encodeEntryHeader(base(p))
    const size = parseInt(h.subarray(124, 135).toString('latin1'), 8)
    const rec = h.subarray(512, 512 + size).toString('utf8')
    const m = /^(\d+) path=/.exec(rec)
    assert.ok(m, rec)
    assert.equal(Number(m[1]), Buffer.byteLength(rec), `record length for n=${n}`)
  }
})

test('mtime clamp: nothing newer than the clamp; SOURCE_DATE_EPOCH parsing', () => {
  assert.equal(effectiveMtimeNs(2_000_000_000n * S, { mtimeClampNs: 1_000_000_000n * S }), 1_000_000_000n * S)
  assert.equal(effectiveMtimeNs(900n * S + 5n, { mtimeClampNs: 1_000_000_000n * S }), 900n * S)
  assert.equal(sourceDateEpochNs({ SOURCE_DATE_EPOCH: '1700000000' }), 1_700_000_000n * S)
  assert.equal(sourceDateEpochNs({}), undefined)
  assert.throws(
    () => sourceDateEpochNs({ SOURCE_DATE_EPOCH: 'yesterday' }),
    (e: unknown) => isLadingError(e, 'USAGE'),
  )
})

test('mtimes before 1970 and uids above the octal range survive via pax', async () => {
  const e = await listTar(await tarOf([{ entry: base('old', { mtimeNs: -86400n * S }) }]))
  assert.equal(e[0]!.pax?.['mtime'], '-86400')
})

test('writer refuses unsafe paths (absolute, .., empty, NUL) and hardlinks escaping', () => {
  for (const p of ['/etc/passwd', '../x', 'a/../../b', '', 'a//b', 'a\0b', './a', 'a/./b']) {
    assert.throws(
      () => encodeEntryHeader(base(p)),
      (e: unknown) => isLadingError(e, 'UNSAFE_PATH'),
      p,
    )
  }
  assert.throws(
    () => encodeEntryHeader(base('h', { type: 'hardlink', linkname: '../../etc/shadow' })),
    (e: unknown) => isLadingError(e, 'UNSAFE_PATH'),
  )
})

test('a file that changed size since it was recorded is an error, not a corrupt archive', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const f = path.join(dir, 'f')
  await fs.promises.writeFile(f, 'short')
  await assert.rejects(
    buffer(writeTar([{ entry: base('f', { size: 10 }), content: { file: f } }])),
    (e: unknown) => isLadingError(e, 'CONFLICT') && /shrank/.test(e.message),
  )
  await assert.rejects(
    buffer(writeTar([{ entry: base('f', { size: 2 }), content: { file: f } }])),
    (e: unknown) => isLadingError(e, 'CONFLICT') && /grew/.test(e.message),
  )
  // Large-file path (streamed) checks the same.
  await fs.promises.writeFile(f, Buffer.alloc(3 * 1024 * 1024))
  await assert.rejects(buffer(writeTar([{ entry: base('f', { size: 3 * 1024 * 1024 - 1 }), content: { file: f } }])), (e: unknown) =>
    isLadingError(e, 'CONFLICT'),
  )
})

test('the writer does not follow a symlink swapped in for a file', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  await fs.promises.writeFile(path.join(dir, 'secret'), 'host secret')
  await fs.promises.symlink(path.join(dir, 'secret'), path.join(dir, 'f'))
  await assert.rejects(
    buffer(writeTar([{ entry: base('f', { size: 11 }), content: { file: path.join(dir, 'f') } }])),
    (e: unknown) => (e as NodeJS.ErrnoException).code === 'ELOOP',
  )
})

test('GNU tar lists and extracts our pax output (long names, long links, big ids)', async (t) => {
  if (!requireTool(t, 'tar')) return
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const long = `${'a'.repeat(90)}/${'b'.repeat(90)}/${'c'.repeat(120)}`
  const tar = await tarOf([
    { entry: base('a'.repeat(90), { type: 'directory', mode: 0o755 }) },
    { entry: base(`${'a'.repeat(90)}/${'b'.repeat(90)}`, { type: 'directory', mode: 0o755 }) },
    { entry: base(long, { size: 5, uid: 3_000_000 }), content: { data: Buffer.from('hello') } },
    { entry: base('link', { type: 'symlink', linkname: long }) },
  ])
  const file = path.join(dir, 'x.tar')
  await fs.promises.writeFile(file, tar)
  const { stdout } = await exec('tar', ['--numeric-owner', '-tvf', file])
  assert.match(stdout, new RegExp(`3000000/0 +5 .* ${long}\n`))
  const out = path.join(dir, 'out')
  await fs.promises.mkdir(out)
  await exec('tar', ['-xpf', file, '-C', out])
  assert.equal(await fs.promises.readFile(path.join(out, long), 'utf8'), 'hello')
  assert.equal((await fs.promises.lstat(path.join(out, long))).uid, 3_000_000)
  assert.equal(await fs.promises.readlink(path.join(out, 'link')), long)
})

test('file contents that straddle output chunks: exact chunk sizes, every byte in place (GNU tar reads it back)', async (t) => {
  if (!requireTool(t, 'tar')) return
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  // Sizes around the 1 MiB chunk edge and the 512-byte block edge, from files and from memory.
  const sizes = [0, 1, 511, 512, 513, TAR_CHUNK - 700, TAR_CHUNK - 512, TAR_CHUNK, TAR_CHUNK + 3, 3 * TAR_CHUNK + 1234, 77]
  const sources: TarSource[] = []
  const want = new Map<string, Buffer>()
  for (const [i, size] of sizes.entries()) {
    const data = Buffer.alloc(size)
    for (let j = 0; j < size; j++) data[j] = (j * 31 + i * 7) & 0xff
    const name = `f${i}`
    want.set(name, data)
    if (i % 3 === 2) sources.push({ entry: base(name, { size }), content: { data } })
    else {
      await fs.promises.writeFile(path.join(dir, name), data)
      sources.push({ entry: base(name, { size }), content: { file: path.join(dir, name) } })
    }
  }
  const chunks: Buffer[] = []
  for await (const c of writeTar(sources)) chunks.push(c as Buffer)
  assert.ok(
    chunks.slice(0, -1).every((c) => c.length === TAR_CHUNK),
    `chunk sizes ${chunks.map((c) => c.length).join(',')}`,
  )
  const file = path.join(dir, 'x.tar')
  await fs.promises.writeFile(file, Buffer.concat(chunks))
  const out = path.join(dir, 'out')
  await fs.promises.mkdir(out)
  await exec('tar', ['-xf', file, '-C', out])
  for (const [name, data] of want) assert.ok((await fs.promises.readFile(path.join(out, name))).equals(data), `${name}: ${data.length} bytes`)
})

test('a FIFO swapped in for a recorded file is refused, never a hang', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const f = path.join(dir, 'f')
  await exec('mkfifo', [f])
  await assert.rejects(
    buffer(writeTar([{ entry: base('f', { size: 5 }), content: { file: f } }])),
    (e: unknown) => isLadingError(e, 'CONFLICT') && /regular file/.test(e.message),
  )
  await assert.rejects(buffer(writeTar([{ entry: base('f', { size: 5 * 1024 * 1024 }), content: { file: f } }])), (e: unknown) => isLadingError(e, 'CONFLICT'))
})
