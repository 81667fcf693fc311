import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { getAttributeSync } from '@napi-rs/xattr'
import { isLadingError } from '../../src/errors.js'
import { applyLayer } from '../../src/layer/apply.js'
import { mapId, parseIdMap } from '../../src/layer/id-map.js'
import { applySpecs, hasCommand, isRoot, need } from './helpers/apply-env.js'
import { tempDir } from '../fixtures/temp.js'
import { makeSparseFile } from './helpers/sparse.js'
import { applyModuleForTestUser, ensureTestUser } from './helpers/rootless.js'

const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex')

describe('applyLayer: entry types and metadata', () => {
  it('extracts every entry type with mode bits, owners, device numbers and times', async (t) => {
    if (!need(t, isRoot(), 'needs root (chown, mknod)')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const stats = await applySpecs(dir, [
      { name: 'd/', mode: 0o1777, uid: 12, gid: 34, mtime: 1500000000 },
      { name: 'd/suid', data: 'abc', mode: 0o4755, uid: 1000, gid: 1001, mtime: 1600000000 },
      { name: 'd/sgid', data: '', mode: 0o2711, uid: 1000, gid: 1001 },
      { name: 'd/link', type: '2', linkname: 'suid', uid: 5, gid: 6, mtime: 1400000000 },
      { name: 'd/hard', type: '1', linkname: 'd/suid' },
      { name: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop0', type: '4', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
      { name: 'run/fifo', type: '6', mode: 0o600, uid: 7 },
      { name: 'deep/er/file', data: 'x', mtime: 1650000000 },
    ])
    assert.equal(stats.entries, 9)
    assert.equal(stats.bytes, 4)
    const d = lstatSync(path.join(dir, 'd'))
    assert.ok(d.isDirectory())
    assert.equal(d.mode & 0o7777, 0o1777)
    assert.deepEqual([d.uid, d.gid], [12, 34])
    // The directory's mtime is set after its contents were created.
    assert.equal(d.mtimeMs, 1500000000 * 1000)
    const f = lstatSync(path.join(dir, 'd/suid'))
    assert.equal(f.mode & 0o7777, 0o4755, 'setuid survives chown (chmod after chown)')
    assert.deepEqual([f.uid, f.gid], [1000, 1001])
    assert.equal(f.mtimeMs, 1600000000 * 1000)
    assert.equal(readFileSync(path.join(dir, 'd/suid'), 'utf8'), 'abc')
    assert.equal(lstatSync(path.join(dir, 'd/sgid')).mode & 0o7777, 0o2711)
    const l = lstatSync(path.join(dir, 'd/link'))
    assert.ok(l.isSymbolicLink())
    assert.equal(readlinkSync(path.join(dir, 'd/link')), 'suid')
    assert.deepEqual([l.uid, l.gid], [5, 6])
    assert.equal(l.mtimeMs, 1400000000 * 1000)
    const h = lstatSync(path.join(dir, 'd/hard'))
    assert.equal(h.ino, f.ino)
    assert.equal(h.nlink, 2)
    const c = lstatSync(path.join(dir, 'dev/null'))
    assert.ok(c.isCharacterDevice())
    assert.equal(c.rdev, (1 << 8) | 3)
    assert.equal(c.mode & 0o7777, 0o666)
    const b = lstatSync(path.join(dir, 'dev/loop0'))
    assert.ok(b.isBlockDevice())
    assert.equal(b.rdev, 7 << 8)
    assert.equal(b.gid, 6)
    const p = lstatSync(path.join(dir, 'run/fifo'))
    assert.ok(p.isFIFO())
    assert.equal(p.uid, 7)
    // Implicit parents are created.
    assert.ok(lstatSync(path.join(dir, 'deep/er')).isDirectory())
  })

  it('device nodes and fifos made in one batch still respect entry order (later entry wins, hardlinks see them)', async (t) => {
    if (!need(t, isRoot(), 'needs root (mknod)')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, [
      { name: 'a', type: '6' },
      { name: 'a', data: 'file wins' },
      { name: 'b', data: 'x' },
      { name: 'b', type: '3', devmajor: 1, devminor: 5 },
      { name: 'd/', mode: 0o755 },
      { name: 'd/f', type: '6' },
      { name: 'd', data: 'dir replaced' },
      { name: 'p', type: '6', mode: 0o640, uid: 3 },
      { name: 'p2', type: '1', linkname: 'p' },
    ])
    assert.equal(readFileSync(path.join(dir, 'a'), 'utf8'), 'file wins')
    assert.ok(lstatSync(path.join(dir, 'b')).isCharacterDevice())
    assert.equal(lstatSync(path.join(dir, 'b')).rdev, (1 << 8) | 5)
    assert.equal(readFileSync(path.join(dir, 'd'), 'utf8'), 'dir replaced')
    const p = lstatSync(path.join(dir, 'p'))
    assert.ok(p.isFIFO())
    assert.equal(p.mode & 0o7777, 0o640)
    assert.equal(p.uid, 3)
    assert.equal(lstatSync(path.join(dir, 'p2')).ino, p.ino)
  })

  it('keeps sub-second mtimes from pax headers', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, [{ name: 'f', data: 'x', pax: { mtime: '1700000000.25' } }])
    assert.equal(lstatSync(path.join(dir, 'f')).mtimeMs, 1700000000250)
  })

  it('sets security.capability, user.* and trusted.* xattrs and warns about other namespaces', async (t) => {
    if (!need(t, isRoot(), 'needs root (security.capability, trusted.*)')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const warnings: string[] = []
    await applySpecs(
      dir,
      [
        {
          name: 'ping',
          data: 'elf',
          mode: 0o755,
          uid: 3,
          pax: {
            'SCHILY.xattr.security.capability': CAP_NET_RAW,
            'SCHILY.xattr.user.k': 'v',
            'SCHILY.xattr.trusted.t': 'tv',
            'SCHILY.xattr.security.selinux': 'x',
          },
        },
        { name: 'dir/', pax: { 'SCHILY.xattr.user.d': 'dv' } },
      ],
      { onWarning: (m) => warnings.push(m) },
    )
    const f = path.join(dir, 'ping')
    assert.deepEqual(getAttributeSync(f, 'security.capability'), CAP_NET_RAW, 'capability set after chown, which would clear it')
    assert.equal(getAttributeSync(f, 'user.k')?.toString(), 'v')
    assert.equal(getAttributeSync(f, 'trusted.t')?.toString(), 'tv')
    assert.equal(getAttributeSync(f, 'security.selinux'), null)
    assert.equal(getAttributeSync(path.join(dir, 'dir'), 'user.d')?.toString(), 'dv')
    assert.ok(
      warnings.some((w) => w.includes('"ping"') && w.includes('security.selinux')),
      warnings.join('\n'),
    )
  })

  it('writes sparse files from tar -S (gnu and pax) with the right content and holes', async (t) => {
    if (!need(t, hasCommand('tar'), 'GNU tar not installed')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    mkdirSync(path.join(dir, 'src'))
    const expected = makeSparseFile(path.join(dir, 'src', 'sparse.bin'))
    for (const args of [['--format=gnu'], ['--format=pax']]) {
      const tarFile = path.join(dir, 'a.tar')
      const r = spawnSync('tar', ['-S', ...args, '-C', path.join(dir, 'src'), '-cf', tarFile, 'sparse.bin'])
      assert.equal(r.status, 0, String(r.stderr))
      const root = path.join(dir, `root${args[0]}`)
      mkdirSync(root)
      const { createReadStream } = await import('node:fs')
      const stats = await applyLayer(root, createReadStream(tarFile), { rootless: !isRoot() })
      assert.equal(stats.bytes, expected.length)
      const out = path.join(root, 'sparse.bin')
      assert.ok(readFileSync(out).equals(expected), `${args[0]}: content differs`)
      assert.ok(lstatSync(out).blocks * 512 < expected.length, `${args[0]}: holes were written out`)
    }
  })

  it('refuses to extract past maxBytes with SIZE_LIMIT', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await assert.rejects(
      applySpecs(
        dir,
        [
          { name: 'a', data: Buffer.alloc(600) },
          { name: 'b', data: Buffer.alloc(600) },
        ],
        { maxBytes: 1000, rootless: !isRoot() },
      ),
      (e: unknown) => isLadingError(e, 'SIZE_LIMIT') && /"b"/.test((e as Error).message),
    )
    assert.ok(!existsSync(path.join(dir, 'b')))
  })

  it('an error of the input after the end-of-archive marker (a digest mismatch) still fails the apply', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const { buildTar } = await import('./helpers/tar-builder.js')
    const { Readable } = await import('node:stream')
    const { LadingError } = await import('../../src/errors.js')
    const tar = Buffer.concat([buildTar([{ name: 'a', data: 'x' }]), Buffer.alloc(4096)])
    const src = Readable.from(
      (async function* () {
        yield tar
        throw new LadingError('DIGEST_MISMATCH', 'blob sha256:abc: digest mismatch')
      })(),
    )
    await assert.rejects(applyLayer(dir, src, { rootless: !isRoot() }), (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH'))
  })

  it('reports an INVALID_TAR layer with the offending entry', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await assert.rejects(applySpecs(dir, [{ name: 'a', data: 'x', badChecksum: true }], { rootless: !isRoot() }), (e: unknown) =>
      isLadingError(e, 'INVALID_TAR'),
    )
    await assert.rejects(
      applySpecs(dir, [{ name: 'h', type: '1', linkname: 'missing' }], { rootless: !isRoot() }),
      (e: unknown) => isLadingError(e, 'INVALID_TAR') && /"h".*missing.*does not exist/.test((e as Error).message),
    )
  })
})

describe('applyLayer: whiteouts and replacement (layer.md)', () => {
  const lower = [
    { name: 'keep', data: 'k' },
    { name: 'gone', data: 'g' },
    { name: 'gonedir/', mode: 0o755 },
    { name: 'gonedir/x', data: 'x' },
    { name: 'op/', mode: 0o755 },
    { name: 'op/a', data: 'a' },
    { name: 'op/sub/', mode: 0o755 },
    { name: 'op/sub/b', data: 'b' },
  ]
  const opts = { rootless: !isRoot() }

  it("whiteouts in a layer applied to an empty root hide nothing, including the same layer's entries", async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const st = await applySpecs(dir, [{ name: 'a', data: 'a' }, { name: '.wh.a' }, { name: 'd/x', data: 'x' }, { name: 'd/.wh..wh..opq' }], opts)
    assert.equal(st.whiteouts, 2)
    assert.deepEqual(readdirSync(dir).sort(), ['a', 'd'])
    assert.deepEqual(readdirSync(path.join(dir, 'd')), ['x'])
  })

  it('.wh.NAME removes a lower file and a lower directory', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, lower, opts)
    const st = await applySpecs(dir, [{ name: '.wh.gone' }, { name: '.wh.gonedir' }, { name: '.wh.never-existed' }], opts)
    assert.equal(st.whiteouts, 3)
    assert.deepEqual(readdirSync(dir).sort(), ['keep', 'op'])
  })

  it("opaque whiteout BEFORE the same layer's entries hides only lower contents", async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, lower, opts)
    await applySpecs(dir, [{ name: 'op/' }, { name: 'op/.wh..wh..opq' }, { name: 'op/new', data: 'n' }, { name: 'op/sub/c', data: 'c' }], opts)
    assert.deepEqual(readdirSync(path.join(dir, 'op')).sort(), ['new', 'sub'])
    assert.deepEqual(readdirSync(path.join(dir, 'op/sub')), ['c'])
  })

  it("opaque whiteout AFTER the same layer's entries hides only lower contents", async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, lower, opts)
    await applySpecs(dir, [{ name: 'op/' }, { name: 'op/new', data: 'n' }, { name: 'op/sub/c', data: 'c' }, { name: 'op/.wh..wh..opq' }], opts)
    assert.deepEqual(readdirSync(path.join(dir, 'op')).sort(), ['new', 'sub'])
    assert.deepEqual(readdirSync(path.join(dir, 'op/sub')), ['c'], "lower op/sub/b hidden, this layer's op/sub/c kept")
    assert.equal(readFileSync(path.join(dir, 'op/new'), 'utf8'), 'n')
  })

  it("a whiteout never removes the same layer's entry, in either order", async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, lower, opts)
    await applySpecs(dir, [{ name: 'gone', data: 'new' }, { name: '.wh.gone' }, { name: '.wh.keep' }, { name: 'keep', data: 'again' }], opts)
    assert.equal(readFileSync(path.join(dir, 'gone'), 'utf8'), 'new')
    assert.equal(readFileSync(path.join(dir, 'keep'), 'utf8'), 'again')
  })

  it('whiteouts under a path that this layer turned into a file are no-ops (umoci writes these)', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, lower, opts)
    await applySpecs(dir, [{ name: 'gonedir', data: 'now a file' }, { name: 'gonedir/.wh.x' }], opts)
    assert.equal(readFileSync(path.join(dir, 'gonedir'), 'utf8'), 'now a file')
  })

  it('a file replaces a directory, a directory replaces a file, a symlink replaces a directory', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, lower, opts)
    await applySpecs(
      dir,
      [
        { name: 'gonedir', data: 'file now' },
        { name: 'keep/', mode: 0o750 },
        { name: 'keep/inside', data: 'i' },
        { name: 'op', type: '2', linkname: 'keep' },
      ],
      opts,
    )
    assert.ok(lstatSync(path.join(dir, 'gonedir')).isFile())
    assert.ok(lstatSync(path.join(dir, 'keep')).isDirectory())
    assert.equal(lstatSync(path.join(dir, 'keep')).mode & 0o777, 0o750)
    assert.ok(lstatSync(path.join(dir, 'op')).isSymbolicLink())
    assert.equal(readFileSync(path.join(dir, 'keep/inside'), 'utf8'), 'i')
  })

  it('a lower directory changed without an entry of its own keeps its mode and mtime', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(
      dir,
      [
        { name: 'usr/', mode: 0o755, mtime: 1000000000 },
        { name: 'usr/bin/', mode: 0o711, mtime: 1100000000 },
        { name: 'usr/bin/old', data: 'o' },
      ],
      opts,
    )
    await applySpecs(dir, [{ name: 'usr/bin/new', data: 'n' }, { name: 'usr/bin/.wh.old' }], opts)
    const st = lstatSync(path.join(dir, 'usr/bin'))
    assert.equal(st.mtimeMs, 1100000000 * 1000)
    assert.equal(st.mode & 0o7777, 0o711)
    assert.equal(lstatSync(path.join(dir, 'usr')).mtimeMs, 1000000000 * 1000)
    assert.deepEqual(readdirSync(path.join(dir, 'usr/bin')), ['new'])
  })

  it('a hardlink to a file of a lower layer shares its inode; replacing a hardlinked file leaves the other name alone', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, lower, opts)
    await applySpecs(dir, [{ name: 'link-to-keep', type: '1', linkname: 'keep' }], opts)
    assert.equal(lstatSync(path.join(dir, 'link-to-keep')).ino, lstatSync(path.join(dir, 'keep')).ino)
    await applySpecs(dir, [{ name: 'keep', data: 'replaced' }], opts)
    assert.equal(readFileSync(path.join(dir, 'keep'), 'utf8'), 'replaced')
    assert.equal(readFileSync(path.join(dir, 'link-to-keep'), 'utf8'), 'k')
  })
})

describe('id maps (umoci --uid-map syntax)', () => {
  it('parses container:host:size and maps ids', () => {
    const m = parseIdMap('0:100000:65536')
    assert.deepEqual(m, { containerId: 0, hostId: 100000, size: 65536 })
    assert.equal(mapId(0, [m]), 100000)
    assert.equal(mapId(65535, [m]), 165535)
    assert.equal(mapId(65536, [m]), undefined)
  })
  it('rejects malformed mappings with USAGE', () => {
    for (const bad of ['', '0:1', '0:1:0', 'a:b:c', '-1:0:1', '4294967295:0:2']) {
      assert.throws(
        () => parseIdMap(bad),
        (e: unknown) => isLadingError(e, 'USAGE'),
        bad,
      )
    }
  })
})

describe('applyLayer: id maps', () => {
  it('maps owners through uidMap/gidMap and warns once about ids outside the maps', async (t) => {
    if (!need(t, isRoot(), 'needs root (chown to mapped ids)')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const warnings: string[] = []
    await applySpecs(
      dir,
      [
        { name: 'd/', uid: 0, gid: 0 },
        { name: 'd/f', data: 'x', uid: 5, gid: 6, mode: 0o4755 },
        { name: 'd/l', type: '2', linkname: 'f', uid: 7, gid: 8 },
        { name: 'd/out1', data: 'x', uid: 70000, gid: 1 },
        { name: 'd/out2', data: 'x', uid: 70000, gid: 1 },
      ],
      { uidMap: [parseIdMap('0:100000:65536')], gidMap: [parseIdMap('0:200000:65536')], onWarning: (w) => warnings.push(w) },
    )
    const d = lstatSync(path.join(dir, 'd'))
    assert.deepEqual([d.uid, d.gid], [100000, 200000])
    const f = lstatSync(path.join(dir, 'd/f'))
    assert.deepEqual([f.uid, f.gid], [100005, 200006])
    assert.equal(f.mode & 0o7777, 0o4755)
    const l = lstatSync(path.join(dir, 'd/l'))
    assert.deepEqual([l.uid, l.gid], [100007, 200008])
    assert.equal(lstatSync(path.join(dir, 'd/out1')).uid, 0, 'unmapped owner not applied')
    assert.equal(warnings.length, 1, warnings.join('\n'))
    assert.match(warnings[0]!, /"d\/out1": owner 70000:1 is outside the id mappings/)
  })
})

describe('applyLayer: rootless', () => {
  it('extracts mode-000 files and directories as an unprivileged user, skipping devices and ownership', async (t) => {
    if (!need(t, isRoot(), 'needs root to switch to the test user')) return
    if (!need(t, ensureTestUser() && hasCommand('runuser', ['--help']), 'user ladingtest and runuser needed')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const mod = applyModuleForTestUser(t)
    spawnSync('chmod', ['0755', dir])
    const root = path.join(dir, 'rootfs')
    mkdirSync(root)
    spawnSync('chown', ['ladingtest:', root])
    const { buildTar } = await import('./helpers/tar-builder.js')
    writeFileSync(
      path.join(dir, 'l1.tar'),
      buildTar([
        { name: 'locked/', mode: 0o000, uid: 0 },
        { name: 'locked/secret', data: 'top', mode: 0o000 },
        { name: 'locked/sub/', mode: 0o000 },
        { name: 'locked/sub/f', data: 'f', mode: 0o400 },
        { name: 'ro/', mode: 0o555 },
        { name: 'ro/file', data: 'r', mode: 0o000, uid: 1234 },
        { name: 'dev/null', type: '3', devmajor: 1, devminor: 3 },
        { name: 'fifo', type: '6', mode: 0o600 },
        { name: 'x000', data: 'x', mode: 0o000, pax: { 'SCHILY.xattr.user.k': 'v' } },
      ]),
    )
    // A second layer writing into and deleting from the mode-000 directories of the first.
    writeFileSync(path.join(dir, 'l2.tar'), buildTar([{ name: 'locked/added', data: 'a', mode: 0o000 }, { name: 'locked/.wh.sub' }, { name: 'ro/.wh.file' }]))
    const script = path.join(dir, 'run.mjs')
    const applyJs = mod.applyJs
    writeFileSync(
      script,
      `
      import { createReadStream } from 'node:fs'
      import { applyLayer } from ${JSON.stringify(applyJs)}
      const warnings = []
      for (const l of ['l1.tar', 'l2.tar']) {
        await applyLayer(${JSON.stringify(root)}, createReadStream(${JSON.stringify(dir)} + '/' + l), { rootless: true, onWarning: (w) => warnings.push(w) })
      }
      console.log(JSON.stringify({ uid: process.getuid(), warnings }))
    `,
    )
    const r = spawnSync('runuser', ['-u', 'ladingtest', '--', process.execPath, script], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    const out = JSON.parse(r.stdout) as { uid: number; warnings: string[] }
    assert.notEqual(out.uid, 0)
    assert.ok(
      out.warnings.some((w) => w.includes('dev/null') && w.includes('rootless')),
      out.warnings.join('\n'),
    )
    const locked = lstatSync(path.join(root, 'locked'))
    assert.equal(locked.mode & 0o7777, 0o000)
    assert.equal(locked.uid, out.uid, 'ownership not applied without maps')
    assert.equal(readFileSync(path.join(root, 'locked/secret'), 'utf8'), 'top')
    assert.equal(lstatSync(path.join(root, 'locked/secret')).mode & 0o7777, 0)
    assert.equal(readFileSync(path.join(root, 'locked/added'), 'utf8'), 'a')
    assert.ok(!existsSync(path.join(root, 'locked/sub')), 'lower mode-000 directory removed by a whiteout')
    assert.deepEqual(readdirSync(path.join(root, 'ro')), [])
    assert.equal(lstatSync(path.join(root, 'ro')).mode & 0o7777, 0o555)
    assert.ok(!existsSync(path.join(root, 'dev/null')))
    assert.ok(lstatSync(path.join(root, 'fifo')).isFIFO())
    assert.equal(getAttributeSync(path.join(root, 'x000'), 'user.k')?.toString(), 'v', 'user.* xattr set before chmod 000')
  })
})

describe('applyLayer: keepDirlinks (umoci --keep-dirlinks)', () => {
  const lower = [
    { name: 'usr/', mode: 0o755 },
    { name: 'usr/lib/', mode: 0o755 },
    { name: 'usr/lib/old', data: 'old' },
    { name: 'lib', type: '2', linkname: 'usr/lib' },
    { name: 'abs', type: '2', linkname: '/usr/lib' },
    { name: 'tofile', type: '2', linkname: 'usr/lib/old' },
  ]
  const upper = [
    { name: 'lib/', mode: 0o750, mtime: 1500000000 },
    { name: 'lib/new', data: 'new' },
    { name: 'abs/', mode: 0o750 },
    { name: 'abs/viaabs', data: 'x' },
    { name: 'tofile/', mode: 0o755 },
  ]

  it('off (the default): a directory entry replaces the symlink, as layer.md says', async (t) => {
    if (!need(t, isRoot(), 'needs root (chown)')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, lower)
    await applySpecs(dir, upper)
    assert.ok(lstatSync(path.join(dir, 'lib')).isDirectory())
    assert.deepEqual(readdirSync(path.join(dir, 'lib')), ['new'])
    assert.deepEqual(readdirSync(path.join(dir, 'usr/lib')), ['old'])
  })

  it('on: symlinks to directories stay, their targets get the contents but keep their metadata (as umoci); a link to a file is still replaced', async (t) => {
    if (!need(t, isRoot(), 'needs root (chown)')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(dir, lower)
    await applySpecs(dir, upper, { keepDirlinks: true })
    assert.equal(readlinkSync(path.join(dir, 'lib')), 'usr/lib')
    assert.equal(readlinkSync(path.join(dir, 'abs')), '/usr/lib', "an absolute target means the root's /usr/lib")
    assert.deepEqual(readdirSync(path.join(dir, 'usr/lib')).sort(), ['new', 'old', 'viaabs'])
    const st = lstatSync(path.join(dir, 'usr/lib'))
    assert.equal(st.mode & 0o7777, 0o755)
    assert.ok(lstatSync(path.join(dir, 'tofile')).isDirectory(), 'a symlink to a file is replaced by the directory')
  })

  it('security: with keepDirlinks a directory symlink pointing above the root is refused, and nothing outside changes', async (t) => {
    if (!need(t, isRoot(), 'needs root (chown)')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const root = path.join(dir, 'root')
    const sentinel = path.join(dir, 'sentinel')
    mkdirSync(root)
    mkdirSync(sentinel, { mode: 0o755 })
    writeFileSync(path.join(sentinel, 'keep'), 'keep')
    await applySpecs(root, [{ name: 'esc', type: '2', linkname: '../sentinel' }])
    await assert.rejects(
      applySpecs(
        root,
        [
          { name: 'esc/', mode: 0o777 },
          { name: 'esc/planted', data: 'x' },
        ],
        { keepDirlinks: true },
      ),
      (e: unknown) => isLadingError(e, 'UNSAFE_PATH') && /esc/.test((e as Error).message),
    )
    assert.deepEqual(readdirSync(sentinel), ['keep'])
    assert.equal(lstatSync(sentinel).mode & 0o7777, 0o755)
  })
})
