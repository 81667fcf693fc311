import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { isLadingError } from '../../src/errors.js'
import { readTar, type TarEntry } from '../../src/layer/tar-reader.js'
import { buildTar, entry, header, paxBody, streamOf } from './helpers/tar-builder.js'
import { makeSparseFile } from './helpers/sparse.js'
import { tempDir } from '../fixtures/temp.js'

interface Got {
  path: string
  type: string
  size: number
  data: Buffer
  entry: TarEntry
}

async function readAll(buf: Buffer, chunk = 700, opts = {}): Promise<Got[]> {
  const out: Got[] = []
  for await (const e of readTar(streamOf(buf, chunk), opts)) {
    const parts: Buffer[] = []
    for await (const c of e.chunks()) parts.push(Buffer.from(c))
    out.push({ path: e.header.path, type: e.header.type, size: e.header.size, data: Buffer.concat(parts), entry: e })
  }
  return out
}

async function rejectsTar(buf: Buffer, pattern: RegExp, opts = {}): Promise<void> {
  await assert.rejects(readAll(buf, 700, opts), (e: unknown) => {
    assert.ok(isLadingError(e, 'INVALID_TAR'), `expected INVALID_TAR, got ${String(e)}`)
    assert.match((e as Error).message, pattern)
    return true
  })
}

describe('tar reader: formats', () => {
  it('reads ustar entries of every type with their fields', async () => {
    const tar = buildTar([
      { name: 'dir/', mode: 0o1755, uid: 1, gid: 2 },
      { name: 'dir/file', data: 'hello', mode: 0o4755, uid: 1000, gid: 1001, mtime: 1234567890 },
      { name: 'dir/link', type: '2', linkname: '../target' },
      { name: 'dir/hard', type: '1', linkname: 'dir/file' },
      { name: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/sda', type: '4', devmajor: 8, devminor: 0 },
      { name: 'fifo', type: '6' },
    ])
    const got = await readAll(tar)
    assert.deepEqual(
      got.map((g) => [g.path, g.type]),
      [
        ['dir/', 'dir'],
        ['dir/file', 'file'],
        ['dir/link', 'symlink'],
        ['dir/hard', 'hardlink'],
        ['dev/null', 'char'],
        ['dev/sda', 'block'],
        ['fifo', 'fifo'],
      ],
    )
    const f = got[1]!.entry.header
    assert.equal(f.mode, 0o4755)
    assert.equal(f.uid, 1000)
    assert.equal(f.gid, 1001)
    assert.equal(f.mtime, 1234567890)
    assert.equal(got[1]!.data.toString(), 'hello')
    assert.equal(got[0]!.entry.header.mode, 0o1755)
    assert.equal(got[2]!.entry.header.linkpath, '../target')
    assert.equal(got[4]!.entry.header.devmajor, 1)
    assert.equal(got[4]!.entry.header.devminor, 3)
  })

  it('treats a v7 regular-file entry whose name ends in / as a directory', async () => {
    const got = await readAll(
      buildTar([
        { name: 'olddir/', type: '\0', magic: 'v7' },
        { name: 'olddir/f', type: '\0', magic: 'v7', data: 'v7' },
      ]),
    )
    assert.deepEqual(
      got.map((g) => [g.path, g.type]),
      [
        ['olddir/', 'dir'],
        ['olddir/f', 'file'],
      ],
    )
    assert.equal(got[1]!.data.toString(), 'v7')
  })

  it('joins the ustar prefix field to the name', async () => {
    const got = await readAll(buildTar([{ name: 'file.txt', prefix: 'a/very/long/prefix', data: 'x' }]))
    assert.equal(got[0]!.path, 'a/very/long/prefix/file.txt')
  })

  it('applies pax records: path, linkpath, size, uid, gid, sub-second mtime, xattrs', async () => {
    const long = 'p/' + 'x'.repeat(200)
    const tar = buildTar([
      {
        name: 'short',
        data: 'abc',
        pax: {
          path: long,
          uid: '3000000',
          gid: '4000000',
          mtime: '1700000000.123456789',
          atime: '1700000001.5',
          'SCHILY.xattr.user.test': Buffer.from([0, 1, 2, 0x0a, 0xff]),
          'SCHILY.xattr.security.capability': 'cap',
          'LIBARCHIVE.xattr.user.la%20b': Buffer.from('aGVsbG8=').toString(),
        },
      },
      { name: 'l', type: '2', pax: { linkpath: 'y'.repeat(300) } },
    ])
    const got = await readAll(tar)
    const h = got[0]!.entry.header
    assert.equal(h.path, long)
    assert.equal(h.uid, 3000000)
    assert.equal(h.gid, 4000000)
    assert.equal(h.mtime, 1700000000.123456789)
    assert.equal(h.atime, 1700000001.5)
    assert.deepEqual(h.xattrs?.get('user.test'), Buffer.from([0, 1, 2, 0x0a, 0xff]))
    assert.equal(h.xattrs?.get('security.capability')?.toString(), 'cap')
    assert.equal(h.xattrs?.get('user.la b')?.toString(), 'hello')
    assert.equal(got[1]!.entry.header.linkpath, 'y'.repeat(300))
  })

  it('pax size overrides the header size', async () => {
    const data = Buffer.alloc(1000, 7)
    const body = paxBody({ size: '1000' })
    const tar = Buffer.concat([
      header({ name: 'ph', type: 'x', data: body }),
      body,
      Buffer.alloc(512 - body.length),
      header({ name: 'big', size: 0 }),
      data,
      Buffer.alloc(24),
      Buffer.alloc(1024),
    ])
    const got = await readAll(tar)
    assert.equal(got[0]!.size, 1000)
    assert.deepEqual(got[0]!.data, data)
  })

  it('applies pax global headers to every later entry', async () => {
    const body = paxBody({ uid: '77', 'SCHILY.xattr.user.g': 'v' })
    const tar = Buffer.concat([
      header({ name: 'global', type: 'g', data: body }),
      body,
      Buffer.alloc(512 - body.length),
      entry({ name: 'a', data: '1' }),
      entry({ name: 'b', data: '2', pax: { uid: '5' } }),
      Buffer.alloc(1024),
    ])
    const got = await readAll(tar)
    assert.equal(got.length, 2)
    assert.equal(got[0]!.entry.header.uid, 77)
    assert.equal(got[1]!.entry.header.uid, 5)
    assert.equal(got[1]!.entry.header.xattrs?.get('user.g')?.toString(), 'v')
  })

  it('reads GNU long names and long link names', async () => {
    const name = 'n/'.repeat(120) + 'file'
    const link = 't/'.repeat(120) + 'target'
    const ln = Buffer.from(name + '\0')
    const ll = Buffer.from(link + '\0')
    const tar = Buffer.concat([
      header({ name: '././@LongLink', type: 'L', data: ln, magic: 'gnu' }),
      ln,
      Buffer.alloc((512 - (ln.length % 512)) % 512),
      header({ name: '././@LongLink', type: 'K', data: ll, magic: 'gnu' }),
      ll,
      Buffer.alloc((512 - (ll.length % 512)) % 512),
      header({ name: name.slice(0, 99), type: '2', linkname: link.slice(0, 99), magic: 'gnu' }),
      Buffer.alloc(1024),
    ])
    const got = await readAll(tar)
    assert.equal(got[0]!.path, name)
    assert.equal(got[0]!.entry.header.linkpath, link)
  })

  it('reads base-256 numeric fields', async () => {
    const uid = Buffer.alloc(8)
    uid[0] = 0x80
    uid.writeUInt32BE(5_000_000, 4)
    const size = Buffer.alloc(12)
    size[0] = 0x80
    size.writeUInt32BE(3, 8)
    const got = await readAll(buildTar([{ name: 'f', data: 'abc', rawUid: uid, rawSize: size }]))
    assert.equal(got[0]!.entry.header.uid, 5_000_000)
    assert.equal(got[0]!.size, 3)
    assert.equal(got[0]!.data.toString(), 'abc')
  })

  it('reads a negative base-256 mtime (before 1970) but refuses other negative numbers', async () => {
    const tar = buildTar([{ name: 'old', data: 'x' }])
    // mtime field at 136: 0xff.. two's complement of -86400.
    const field = Buffer.alloc(12, 0xff)
    field.writeInt32BE(-86400, 8)
    field.copy(tar, 136)
    // Recompute the checksum.
    tar.fill(0x20, 148, 156)
    let sum = 0
    for (let i = 0; i < 512; i++) sum += tar[i]!
    tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
    const got = await readAll(tar)
    assert.equal(got[0]!.entry.header.mtime, -86400)
  })

  it('streams large bodies in chunks and skips unread data', async () => {
    const big = Buffer.alloc(300_000)
    for (let i = 0; i < big.length; i++) big[i] = i % 251
    const tar = buildTar([
      { name: 'big', data: big },
      { name: 'after', data: 'ok' },
    ])
    const got = await readAll(tar, 4096, { smallFileMax: 1024 })
    assert.equal(got[0]!.entry.body, undefined)
    assert.deepEqual(got[0]!.data, big)
    assert.equal(got[1]!.data.toString(), 'ok')
    // Not reading the body at all still lands on the next header.
    const names: string[] = []
    for await (const e of readTar(streamOf(tar, 5000), { smallFileMax: 1024 })) names.push(e.header.path)
    assert.deepEqual(names, ['big', 'after'])
  })

  it('accepts an archive without the end-of-archive blocks (clean EOF at a block boundary)', async () => {
    const got = await readAll(buildTar([{ name: 'a', data: 'x' }], { end: false }))
    assert.equal(got.length, 1)
  })

  it('drains the input after the end marker so a verifying stream underneath sees every byte', async () => {
    let consumed = 0
    const tar = Buffer.concat([buildTar([{ name: 'a', data: 'x' }]), Buffer.alloc(10240)])
    const src = Readable.from(
      (function* () {
        for (let i = 0; i < tar.length; i += 512) {
          consumed += 512
          yield tar.subarray(i, i + 512)
        }
      })(),
    )
    for await (const e of readTar(src)) void e
    assert.equal(consumed, tar.length)
  })
})

describe('tar reader: malformed archives are INVALID_TAR, never a hang', () => {
  it('bad checksum', async () => {
    await rejectsTar(buildTar([{ name: 'a', data: 'x', badChecksum: true }]), /offset 0: bad header checksum/)
  })
  it('garbage that is not a tar', async () => {
    await rejectsTar(Buffer.alloc(2048, 0x41), /bad header checksum|invalid octal/)
  })
  it('truncated in a header', async () => {
    await rejectsTar(buildTar([{ name: 'a', data: 'x' }, { name: 'b' }]).subarray(0, 1124), /truncated archive: header at offset 1024/)
  })
  it('truncated in the data', async () => {
    const tar = buildTar([{ name: 'a', data: Buffer.alloc(5000) }], { end: false })
    await rejectsTar(tar.subarray(0, 3000), /truncated archive: tar entry "a" at offset 0: data ends early/)
  })
  it('truncated in a streamed body', async () => {
    const tar = buildTar([{ name: 'a', data: Buffer.alloc(50000) }], { end: false })
    await rejectsTar(tar.subarray(0, 30000), /data ends early/, { smallFileMax: 1000 })
  })
  it('negative size (base-256)', async () => {
    const size = Buffer.alloc(12, 0xff)
    await rejectsTar(buildTar([{ name: 'neg', rawSize: size }]), /negative base-256 size/)
  })
  it('impossible size (beyond 2^53)', async () => {
    const size = Buffer.alloc(12, 0x7f)
    size[0] = 0x80
    await rejectsTar(buildTar([{ name: 'huge', rawSize: size }]), /too large/)
  })
  it('invalid octal digits in a numeric field', async () => {
    await rejectsTar(buildTar([{ name: 'x', rawSize: Buffer.from('0000000009a\0') }]), /invalid octal digit in size/)
  })
  it('huge pax header is refused before it is buffered', async () => {
    const h = header({ name: 'ph', type: 'x', size: 1 << 30 })
    await rejectsTar(Buffer.concat([h, Buffer.alloc(1024)]), /pax header at offset 0: 1073741824 bytes exceeds the limit/)
  })
  it('pax record whose length points past the header', async () => {
    const body = Buffer.from('999 path=x\n')
    const tar = Buffer.concat([header({ name: 'ph', type: 'x', data: body }), body, Buffer.alloc(512 - body.length), entry({ name: 'a' }), Buffer.alloc(1024)])
    await rejectsTar(tar, /impossible length 999/)
  })
  it('pax record without key=value', async () => {
    const body = Buffer.from('8 path\n\n')
    const tar = Buffer.concat([header({ name: 'ph', type: 'x', data: body }), body, Buffer.alloc(512 - body.length), entry({ name: 'a' }), Buffer.alloc(1024)])
    await rejectsTar(tar, /pax/)
  })
  it('pax numeric value that is not a number', async () => {
    await rejectsTar(buildTar([{ name: 'a', pax: { size: '-5' } }]), /pax size="-5" is not a non-negative integer/)
  })
  it('pax header not followed by an entry', async () => {
    const body = paxBody({ path: 'x' })
    const tar = Buffer.concat([header({ name: 'ph', type: 'x', data: body }), body, Buffer.alloc(512 - body.length), Buffer.alloc(1024)])
    await rejectsTar(tar, /not followed by an entry/)
  })
  it('sparse map inconsistent with the stored data', async () => {
    const tar = buildTar([{ name: 'sp', data: 'abcd', pax: { 'GNU.sparse.size': '100', 'GNU.sparse.map': '0,10,50,10' } }])
    await rejectsTar(tar, /sparse map holds 20 bytes but the archive stores 4/)
  })
  it('sparse region past the file size', async () => {
    const tar = buildTar([{ name: 'sp', data: 'abcd', pax: { 'GNU.sparse.size': '10', 'GNU.sparse.map': '8,4' } }])
    await rejectsTar(tar, /past the file size/)
  })
})

function haveGnuTar(): boolean {
  const r = spawnSync('tar', ['--version'], { encoding: 'utf8' })
  return r.status === 0 && r.stdout.includes('GNU tar')
}

describe('tar reader: archives from GNU tar', () => {
  const formats: Array<[string, string[]]> = [
    ['gnu (old sparse S)', ['--format=gnu']],
    ['pax sparse 0.0', ['--format=pax', '--sparse-version=0.0']],
    ['pax sparse 0.1', ['--format=pax', '--sparse-version=0.1']],
    ['pax sparse 1.0', ['--format=pax', '--sparse-version=1.0']],
  ]
  for (const [label, args] of formats) {
    it(`reads a sparse file written by tar -S, ${label}`, async (t) => {
      if (!haveGnuTar()) {
        if (process.env.CI === 'true') throw new Error('GNU tar missing')
        t.skip('GNU tar not installed')
        return
      }
      const dir = tempDir(t, { prefix: 'lading-tar-' })
      mkdirSync(path.join(dir, 'src'))
      const expected = makeSparseFile(path.join(dir, 'src', 'sparse.bin'))
      writeFileSync(path.join(dir, 'src', 'after.txt'), 'after')
      const r = spawnSync('tar', ['-S', ...args, '-C', path.join(dir, 'src'), '-cf', path.join(dir, 'a.tar'), 'sparse.bin', 'after.txt'])
      assert.equal(r.status, 0, String(r.stderr))
      const got = await readAll(readFileSync(path.join(dir, 'a.tar')), 3000, { smallFileMax: 4096 })
      assert.equal(got[0]!.path, 'sparse.bin')
      const sp = got[0]!.entry.header.sparse
      assert.ok(sp, 'sparse map expected')
      assert.equal(sp.realSize, expected.length)
      assert.ok(sp.regions.length > 4, `only ${sp.regions.length} regions: extension headers not exercised`)
      // Rebuild the logical file from the map and the stored data.
      const rebuilt = Buffer.alloc(sp.realSize)
      let at = 0
      for (const reg of sp.regions) {
        got[0]!.data.copy(rebuilt, reg.offset, at, at + reg.length)
        at += reg.length
      }
      assert.equal(at, got[0]!.data.length)
      assert.ok(rebuilt.equals(expected), 'sparse content differs')
      assert.equal(got[1]!.path, 'after.txt')
      assert.equal(got[1]!.data.toString(), 'after')
    })
  }

  it('reads long names in gnu and pax archives from GNU tar', async (t) => {
    if (!haveGnuTar()) {
      if (process.env.CI === 'true') throw new Error('GNU tar missing')
      t.skip('GNU tar not installed')
      return
    }
    const dir = tempDir(t, { prefix: 'lading-tar-' })
    const deep = path.join('d'.repeat(60), 'e'.repeat(60), 'f'.repeat(60))
    mkdirSync(path.join(dir, 'src', deep), { recursive: true })
    const fname = path.join(deep, 'g'.repeat(90) + '.txt')
    writeFileSync(path.join(dir, 'src', fname), 'deep')
    spawnSync('ln', ['-s', 'x'.repeat(150), path.join(dir, 'src', 'longlink')])
    for (const fmt of ['gnu', 'pax', 'ustar']) {
      if (fmt === 'ustar') continue // ustar cannot hold a 150-byte link name
      const r = spawnSync('tar', [`--format=${fmt}`, '-C', path.join(dir, 'src'), '-cf', path.join(dir, `${fmt}.tar`), '.'])
      assert.equal(r.status, 0, String(r.stderr))
      const got = await readAll(readFileSync(path.join(dir, `${fmt}.tar`)))
      const f = got.find((g) => g.path === `./${fname}`)
      assert.ok(f, `${fmt}: long file name missing: ${got.map((g) => g.path).join(', ')}`)
      assert.equal(f.data.toString(), 'deep')
      const l = got.find((g) => g.path === './longlink')
      assert.equal(l?.entry.header.linkpath, 'x'.repeat(150))
    }
  })
})

describe('tar reader: mutated archives', () => {
  it('every single-byte corruption of a pax/GNU archive either parses or is INVALID_TAR (no other error, no hang)', async () => {
    const ln = Buffer.from('l/'.repeat(70) + 'name\0')
    const base = Buffer.concat([
      entry({ name: 'a', data: 'hello', pax: { path: 'p/'.repeat(60) + 'a', mtime: '1.5', 'SCHILY.xattr.user.x': 'y' } }),
      header({ name: '././@LongLink', type: 'L', data: ln, magic: 'gnu' }),
      ln,
      Buffer.alloc(512 - ln.length),
      entry({ name: 'x', data: Buffer.alloc(700, 3), magic: 'gnu' }),
      entry({ name: 'sp', data: 'abcd', pax: { 'GNU.sparse.size': '100', 'GNU.sparse.map': '0,2,50,2' } }),
      Buffer.alloc(1024),
    ])
    // A deterministic pseudo-random walk over positions and values.
    let seed = 12345
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    let parsed = 0
    let refused = 0
    for (let i = 0; i < 1500; i++) {
      const buf = Buffer.from(base)
      const pos = i < 512 * 2 ? i : rand(buf.length)
      buf[pos] = rand(256)
      const cut = i % 7 === 0 ? rand(buf.length) : buf.length
      try {
        await readAll(buf.subarray(0, cut), 333, { smallFileMax: 512 })
        parsed++
      } catch (e) {
        assert.ok(isLadingError(e, 'INVALID_TAR'), `byte ${pos}, cut ${cut}: ${String(e)}`)
        refused++
      }
    }
    assert.ok(parsed > 0 && refused > 0, `parsed ${parsed}, refused ${refused}`)
  })
})
