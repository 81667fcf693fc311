/**
 * COPY writes its files with applyEntries(tarEntriesOf(sources)) instead of encoding a tar and
 * parsing it back (issue 13's benchmark: the round trip cost more than the writing). These tests
 * hold the direct path to the tar path: the same tree from the same sources, the same checks on
 * entries and on files that change while they are copied, and the same path safety.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { applyEntries, applyLayer } from '../../src/layer/apply.js'
import { diffLayer } from '../../src/layer/diff.js'
import { scanTree } from '../../src/layer/snapshot.js'
import { toTarSources } from '../../src/layer/tar-directory.js'
import { tarEntriesOf, writeTar, type TarSource } from '../../src/layer/tar-writer.js'
import { diffTrees, treeOf } from '../fixtures/tree.js'
import { tempDir } from '../fixtures/temp.js'
import { listTar } from '../fixtures/tar.js'

const rootless = process.getuid?.() !== 0

/** Every kind of entry COPY can meet, with the metadata that must survive. */
function makeSource(dir: string): void {
  fs.mkdirSync(path.join(dir, 'a/b/c'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'a/empty'), '')
  fs.writeFileSync(path.join(dir, 'a/small.txt'), 'hello\n')
  // Larger than the size read whole (1 MiB): read and applied in pieces.
  fs.writeFileSync(path.join(dir, 'a/b/big.bin'), Buffer.alloc(3 * 1024 * 1024 + 17, 7))
  fs.linkSync(path.join(dir, 'a/small.txt'), path.join(dir, 'a/b/hard.txt'))
  fs.symlinkSync('../small.txt', path.join(dir, 'a/b/link'))
  fs.symlinkSync('/nowhere/at/all', path.join(dir, 'a/dangling'))
  execFileSync('mkfifo', [path.join(dir, 'a/fifo')])
  // A name too long for ustar's name field (a pax path record in a tar).
  fs.writeFileSync(path.join(dir, 'a/b/c', 'n'.repeat(150)), 'long name')
  fs.writeFileSync(path.join(dir, 'a/setuid'), '#!/bin/sh\n')
  fs.chmodSync(path.join(dir, 'a/setuid'), 0o4755)
  fs.chmodSync(path.join(dir, 'a/b/c'), 0o700)
  // Sub-second times (pax mtime records in a tar, parsed back to the same double).
  fs.utimesSync(path.join(dir, 'a/small.txt'), 1_600_000_000.123456, 1_600_000_000.123456)
  fs.utimesSync(path.join(dir, 'a/b'), 1_500_000_000.5, 1_500_000_000.5)
  if (!rootless) fs.chownSync(path.join(dir, 'a/b'), 1234, 5678)
  try {
    execFileSync('setfattr', ['-n', 'user.lading', '-v', 'kept', path.join(dir, 'a/small.txt')], { stdio: 'ignore' })
  } catch {
    // No setfattr, or a filesystem without user xattrs: the rest still compares.
  }
}

/** A test directory (removed after the test) with `src` made by makeSource and the named empty directories. */
function setup(t: TestContext, ...dirs: string[]): { src: string; dirs: string[] } {
  const dir = tempDir(t, { prefix: 'lading-copy-' })
  const src = path.join(dir, 'src')
  fs.mkdirSync(src)
  makeSource(src)
  const made = dirs.map((d) => path.join(dir, d))
  for (const d of made) fs.mkdirSync(d)
  return { src, dirs: made }
}

function sourcesOf(dir: string, prefix: string): Generator<TarSource> {
  const items = [...scanTree(dir).entries].filter(([rel]) => rel !== '').map(([rel, entry]) => ({ rel, entry }))
  return toTarSources(dir, items, prefix)
}

/** mtimes to the nanosecond of every path below `sub` (the implicit parents are made "now"). */
function mtimes(root: string, sub: string): Map<string, bigint> {
  const out = new Map<string, bigint>()
  for (const [rel, e] of scanTree(path.join(root, sub)).entries) if (rel !== '') out.set(rel, e.mtimeNs)
  return out
}

test('COPY direct apply: the same tree as the same sources written as a tar and applied', async (t) => {
  const {
    src,
    dirs: [viaTar, direct],
  } = setup(t, 'via-tar', 'direct') as { src: string; dirs: [string, string] }
  const opts = { subsecondMtimes: true }
  const a = await applyLayer(viaTar, writeTar(sourcesOf(src, 'opt/app'), opts), { rootless })
  const b = await applyEntries(direct, tarEntriesOf(sourcesOf(src, 'opt/app'), opts), { rootless })
  assert.deepEqual(b, a)
  assert.deepEqual(diffTrees(treeOf(viaTar, { nlink: true }), treeOf(direct, { nlink: true }), ['via tar', 'direct']), [])
  assert.deepEqual(mtimes(direct, 'opt/app'), mtimes(viaTar, 'opt/app'))
  // And the content is the source's (not only equal between the two).
  assert.equal(fs.readFileSync(path.join(direct, 'opt/app/a/b/big.bin')).length, 3 * 1024 * 1024 + 17)
  assert.equal(fs.lstatSync(path.join(direct, 'opt/app/a/b/hard.txt')).ino, fs.lstatSync(path.join(direct, 'opt/app/a/small.txt')).ino)
})

test('COPY direct apply: a clamped mtime is applied as the tar would carry it', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-copy-' })
  const src = path.join(dir, 'src')
  fs.mkdirSync(src)
  fs.writeFileSync(path.join(src, 'f'), 'x')
  fs.utimesSync(path.join(src, 'f'), 1_700_000_000.75, 1_700_000_000.75)
  for (const opts of [{ mtimeClampNs: 1_600_000_000_000_000_000n }, {}, { subsecondMtimes: true }]) {
    const viaTar = fs.mkdtempSync(path.join(dir, 'tar-'))
    const direct = fs.mkdtempSync(path.join(dir, 'direct-'))
    await applyLayer(viaTar, writeTar(sourcesOf(src, 'x'), opts), { rootless })
    await applyEntries(direct, tarEntriesOf(sourcesOf(src, 'x'), opts), { rootless })
    assert.equal(fs.lstatSync(path.join(direct, 'x/f'), { bigint: true }).mtimeNs, fs.lstatSync(path.join(viaTar, 'x/f'), { bigint: true }).mtimeNs, JSON.stringify(opts, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)))
  }
})

test('COPY direct apply: a file that grew or shrank since it was listed is a CONFLICT', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-copy-' })
  const f = path.join(dir, 'f')
  const root = path.join(dir, 'root')
  fs.mkdirSync(root)
  for (const [actual, listed, what] of [[10, 5, 'grew'], [5, 10, 'shrank'], [3 * 1024 * 1024, 2 * 1024 * 1024, 'grew'], [1024 * 1024 + 1, 2 * 1024 * 1024, 'shrank']] as const) {
    fs.writeFileSync(f, Buffer.alloc(actual, 1))
    const source: TarSource = { entry: { path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: listed, mtimeNs: 0n }, content: { file: f } }
    await assert.rejects(applyEntries(fs.mkdtempSync(path.join(root, 'r-')), tarEntriesOf([source]), { rootless }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CONFLICT')
      assert.match(e.message, new RegExp(`${what} while it was being archived`))
      return true
    })
  }
})

test('security: COPY direct apply does not follow a file swapped for a symlink after it was listed', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-copy-' })
  const secret = path.join(dir, 'secret')
  fs.writeFileSync(secret, 'host secret')
  fs.symlinkSync(secret, path.join(dir, 'swapped'))
  const root = path.join(dir, 'root')
  fs.mkdirSync(root)
  const source: TarSource = { entry: { path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 11, mtimeNs: 0n }, content: { file: path.join(dir, 'swapped') } }
  await assert.rejects(applyEntries(root, tarEntriesOf([source]), { rootless }), (e: Error & { code?: string }) => e.code === 'ELOOP' || e.code === 'CONFLICT')
  assert.equal(fs.existsSync(path.join(root, 'f')) && fs.readFileSync(path.join(root, 'f'), 'utf8') === 'host secret', false)
})

test('security: COPY direct apply refuses unclean entry paths as the tar writer does, and writes nothing', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-copy-' })
  const root = path.join(dir, 'root')
  fs.mkdirSync(root)
  for (const p of ['../escape', '/abs', 'a/../../b', 'a//b', './a']) {
    const source: TarSource = { entry: { path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtimeNs: 0n }, content: { data: Buffer.from('x') } }
    await assert.rejects(applyEntries(root, tarEntriesOf([source]), { rootless }), (e: Error & { code?: string }) => e.code === 'UNSAFE_PATH', p)
  }
  assert.deepEqual(fs.readdirSync(root), [])
  assert.equal(fs.existsSync(path.join(dir, 'escape')), false)
})

test('security: COPY direct apply resolves paths inside the root (a symlink to / in the root is the root)', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-copy-' })
  const root = path.join(dir, 'root')
  const host = path.join(dir, 'host')
  fs.mkdirSync(root)
  fs.mkdirSync(host)
  // The rootfs's own symlinks are followed inside it: `up` is the rootfs's `/`, `out` its /host-like path.
  fs.symlinkSync('/', path.join(root, 'up'))
  fs.symlinkSync(host, path.join(root, 'out'))
  const sources: TarSource[] = [
    { entry: { path: 'up/x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtimeNs: 0n }, content: { data: Buffer.from('1') } },
    { entry: { path: 'out/y', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtimeNs: 0n }, content: { data: Buffer.from('2') } },
  ]
  await applyEntries(root, tarEntriesOf(sources), { rootless })
  assert.equal(fs.readFileSync(path.join(root, 'x'), 'utf8'), '1')
  assert.deepEqual(fs.readdirSync(host), [], 'nothing written through the symlink to the host directory')
  assert.equal(fs.readFileSync(path.join(root, host, 'y'), 'utf8'), '2')
})

/** A small image-like tree: directories, files, a hardlink pair, symlinks. */
function makeBase(root: string): void {
  for (const d of ['etc', 'usr/bin', 'usr/lib/x', 'opt', 'var/empty']) fs.mkdirSync(path.join(root, d), { recursive: true })
  fs.writeFileSync(path.join(root, 'etc/hosts'), '127.0.0.1 localhost\n')
  fs.writeFileSync(path.join(root, 'usr/bin/tool'), 'v1')
  fs.writeFileSync(path.join(root, 'usr/bin/other'), 'other')
  fs.linkSync(path.join(root, 'usr/bin/other'), path.join(root, 'usr/lib/x/other-link'))
  fs.symlinkSync('usr/bin', path.join(root, 'bin'))
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(root, 'usr/lib/x', `f${i}`), String(i))
}

test('COPY diff scope: the changeset and the new snapshot are those of a whole walk, with the rest of the tree not read', async (t) => {
  const {
    src,
    dirs: [root],
  } = setup(t, 'root') as { src: string; dirs: [string] }
  makeBase(root)
  const before = scanTree(root)
  // As COPY does: a directory into a new nested path, a file over an existing one, a new file in an existing directory.
  await applyEntries(root, tarEntriesOf(sourcesOf(src, 'opt/new/app'), { subsecondMtimes: true }), { rootless })
  const one = (p: string, data: string): TarSource => ({ entry: { path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtimeNs: 1n }, content: { data: Buffer.from(data) } })
  await applyEntries(root, tarEntriesOf([one('usr/bin/tool', 'v2'), one('etc/new.conf', 'x=1')]), { rootless })
  const scope = ['opt/new/app', 'usr/bin/tool', 'etc/new.conf']
  const whole = diffLayer(root, before)
  const scoped = diffLayer(root, before, { scope })
  const [wholeTar, scopedTar] = await Promise.all([listTar(whole.stream), listTar(scoped.stream)])
  const wholeChanges = await whole.changes
  const scopedChanges = await scoped.changes
  assert.ok(wholeChanges.some((c) => c.path === 'usr/bin/tool' && c.kind === 'modified'))
  assert.ok(wholeChanges.some((c) => c.path.startsWith('opt/new/app/a/b/c/')))
  assert.deepEqual(scopedChanges, wholeChanges)
  assert.deepEqual(scopedTar, wholeTar)
  const [a, b] = [await whole.snapshot, await scoped.snapshot]
  assert.deepEqual([...b.entries.keys()], [...a.entries.keys()], 'walk order kept')
  assert.deepEqual(b.entries, a.entries)
})

test('COPY diff scope: a scope of the root is the whole tree; paths outside the scope are taken as they were', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-copy-' })
  const root = path.join(dir, 'root')
  fs.mkdirSync(root)
  makeBase(root)
  const before = scanTree(root)
  fs.writeFileSync(path.join(root, 'usr/lib/x/f1'), 'changed outside the scope')
  fs.writeFileSync(path.join(root, 'etc/new'), 'in the scope')
  const inScope = await diffLayer(root, before, { scope: ['etc/new'] }).changes
  assert.deepEqual(inScope.map((c) => c.path).sort(), ['etc', 'etc/new'])
  const all = await diffLayer(root, before, { scope: ['/'] }).changes
  assert.deepEqual(all.map((c) => c.path).sort(), ['etc', 'etc/new', 'usr/lib/x/f1'])
})
