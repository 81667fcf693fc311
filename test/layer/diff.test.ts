import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import { isLadingError } from '../../src/errors.js'
import { compress } from '../../src/io/compression.js'
import { diffLayer, type Change } from '../../src/layer/diff.js'
import { saveSnapshot, loadSnapshot, takeSnapshot } from '../../src/layer/snapshot.js'
import { tarDirectory } from '../../src/layer/tar-directory.js'
import { requireTool } from '../helpers/tools.js'
import { buildTree, isRoot, setXattr } from './fixture-tree.js'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { diffTrees, treeOf } from '../fixtures/tree.js'
import { listTar } from '../fixtures/tar.js'
import { initImage } from '../fixtures/image.js'
import { tempDir, type AfterHook } from '../fixtures/temp.js'

const exec = promisify(execFile)

const T0 = new Date('2021-06-01T12:00:00Z')

/** The standard set of changes, one per case the diff must handle. */
function mutate(root: string, xattrs: boolean): void {
  const p = (rel: string): string => path.join(root, rel)
  fs.appendFileSync(p('etc/passwd'), 'user:x:1000:1000::/home/user:/bin/sh\n') // modified content
  fs.chmodSync(p('etc/meta'), 0o600) // metadata only: mode
  if (isRoot) fs.chownSync(p('etc/own'), 1, 1) // metadata only: owner
  fs.rmSync(p('var/cache/dir1'), { recursive: true }) // deleted directory: one whiteout
  fs.rmSync(p('usr/bin/link')) // deleted symlink
  fs.mkdirSync(p('new/dir'), { recursive: true }) // added tree
  fs.writeFileSync(p('new/dir/file'), 'new\n')
  fs.rmSync(p('opt/t2d')) // file -> directory
  fs.mkdirSync(p('opt/t2d'))
  fs.writeFileSync(p('opt/t2d/inner'), 'inner\n')
  fs.rmSync(p('opt/d2f'), { recursive: true }) // directory -> file
  fs.writeFileSync(p('opt/d2f'), 'now a file\n')
  fs.rmSync(p('opt/l2f')) // symlink -> file
  fs.writeFileSync(p('opt/l2f'), 'was a symlink\n')
  fs.linkSync(p('hl/orig'), p('hl/third')) // new hardlink to an existing file
  fs.writeFileSync(p('masked/x'), 'changed but masked') // masked: ignored
  fs.writeFileSync(p('masked/y'), 'added but masked')
  if (xattrs) setXattr(p('xat/f'), 'user.k', 'v') // metadata only: xattr
  fs.writeFileSync(p('same/size'), 'BBBB') // same size, mtime put back: caught by ctime
  fs.utimesSync(p('same/size'), T0, T0)
}

function kinds(changes: Change[]): Map<string, string> {
  return new Map(changes.map((c) => [c.path, c.kind]))
}

async function setup(t: AfterHook): Promise<{ dir: string; root: string; xattrs: boolean }> {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const root = path.join(dir, 'rootfs')
  const info = buildTree(root)
  return { dir, root, xattrs: info.xattrs }
}

test('diff classifies every kind of change (add, modify, delete, dir delete, type change, metadata, hardlink, mask)', async (t) => {
  const { root, xattrs } = await setup(t)
  const before = await takeSnapshot(root)
  await sleep(30) // past the kernel's coarse timestamp tick, as any real edit after unpack is
  mutate(root, xattrs)
  const { stream, changes } = diffLayer(root, before, { maskPaths: ['/masked'] })
  const k = kinds(await changes)
  const expect: Record<string, string> = {
    'etc/passwd': 'modified',
    'etc/meta': 'metadata',
    'var/cache/dir1': 'deleted',
    'usr/bin/link': 'deleted',
    new: 'added',
    'new/dir': 'added',
    'new/dir/file': 'added',
    'opt/t2d': 'modified',
    'opt/t2d/inner': 'added',
    'opt/d2f': 'modified',
    'opt/l2f': 'modified',
    'hl/third': 'added',
    'hl/orig': 'modified',
    'hl/second': 'modified',
    'same/size': 'modified',
    'var/cache': 'metadata',
    'usr/bin': 'metadata',
    opt: 'metadata',
    hl: 'metadata',
  }
  if (isRoot) expect['etc/own'] = 'metadata'
  if (xattrs) expect['xat/f'] = 'metadata'
  for (const [p, want] of Object.entries(expect)) assert.equal(k.get(p), want, p)
  for (const p of [
    'etc/keep',
    'data/big',
    'usr/bin/tool',
    'etc',
    'masked',
    'masked/x',
    'masked/y',
    'var/cache/dir1/a',
    'var/cache/dir1/b',
    'opt/d2f/child',
    'uni/naïve-日本',
  ]) {
    assert.ok(!k.has(p), `${p} must not be in the changeset (${k.get(p)})`)
  }
  const entries = await listTar(stream)
  const names = entries.map((e) => e.name)
  assert.deepEqual(names.filter((n) => n.includes('.wh.')).sort(), ['usr/bin/.wh.link', 'var/cache/.wh.dir1'])
  assert.ok(!names.some((n) => n.startsWith('masked')), 'masked paths neither added nor whited out')
  assert.ok(!names.includes('data/big'), 'unchanged file not in the layer')
  const hl = entries.filter((e) => e.name.startsWith('hl/') && e.name !== 'hl/')
  assert.deepEqual(
    hl.map((e) => [e.name, e.type, e.linkname]),
    [
      ['hl/orig', 'file', null],
      ['hl/second', 'link', 'hl/orig'],
      ['hl/third', 'link', 'hl/orig'],
    ],
  )
  const meta = entries.find((e) => e.name === 'etc/meta')!
  assert.equal(meta.mode, 0o600)
  assert.equal(meta.data.toString(), 'metadata only\n', 'a metadata-only change re-adds the whole file')
  assert.equal(entries.find((e) => e.name === 'opt/t2d/')!.type, 'directory')
  assert.equal(entries.find((e) => e.name === 'opt/d2f')!.type, 'file')
  if (xattrs) assert.equal(entries.find((e) => e.name === 'xat/f')!.pax?.['SCHILY.xattr.user.k'], 'v')
})

test('no change: empty changeset and an empty archive; a refreshed snapshot diffs clean', async (t) => {
  const { dir, root, xattrs } = await setup(t)
  const before = await takeSnapshot(root)
  const first = diffLayer(root, before)
  assert.deepEqual(await first.changes, [])
  assert.ok((await buffer(first.stream)).equals(Buffer.alloc(1024)))
  await sleep(30)
  mutate(root, xattrs)
  const second = diffLayer(root, before)
  assert.ok((await second.changes).length > 10)
  second.stream.destroy()
  const file = path.join(dir, 'snap')
  await saveSnapshot(await second.snapshot, file)
  const third = diffLayer(root, await loadSnapshot(file))
  assert.deepEqual(await third.changes, [])
  third.stream.destroy()
})

test('diff refuses a new file named like a whiteout', async (t) => {
  const { root } = await setup(t)
  const before = await takeSnapshot(root)
  fs.writeFileSync(path.join(root, 'etc/.wh.passwd'), '')
  const { stream, changes } = diffLayer(root, before)
  assert.equal((await changes).find((c) => c.path === 'etc/.wh.passwd')?.kind, 'added')
  await assert.rejects(buffer(stream), (e: unknown) => isLadingError(e, 'UNSUPPORTED'))
})

test('diff output is deterministic for the same tree and snapshot', async (t) => {
  const { root, xattrs } = await setup(t)
  const before = await takeSnapshot(root)
  await sleep(30)
  mutate(root, xattrs)
  const a = await buffer(diffLayer(root, before, { maskPaths: ['masked'] }).stream)
  const b = await buffer(diffLayer(root, before, { maskPaths: ['masked'] }).stream)
  assert.ok(a.equals(b))
})

test('applied after the base layer by umoci and by GNU tar, the changeset reproduces the edited tree', async (t) => {
  if (!requireTool(t, 'umoci')) return
  if (!isRoot) {
    t.skip('umoci unpack with ownership needs root')
    return
  }
  const { dir, root, xattrs } = await setup(t)
  const base = await buffer(tarDirectory(root))
  const before = await takeSnapshot(root)
  await sleep(30)
  mutate(root, xattrs)
  const change = await buffer(diffLayer(root, before, { maskPaths: ['masked'] }).stream)
  const layout = path.join(dir, 'layout')
  const gz = async (b: Buffer): Promise<Buffer> => buffer(compress(Readable.from([b]), 'gzip'))
  await initImage(
    layout,
    {
      layers: [
        { blob: await gz(base), tar: base, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
        { blob: await gz(change), tar: change, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
      ],
    },
    'v2',
  )
  const bundle = path.join(dir, 'bundle')
  await exec('umoci', ['unpack', '--image', `${layout}:v2`, bundle])
  const unmasked = (m: ReturnType<typeof treeOf>): ReturnType<typeof treeOf> => new Map([...m].filter(([p]) => p !== 'masked' && !p.startsWith('masked/')))
  assert.deepEqual(diffTrees(unmasked(treeOf(root, { skip: ['.'] })), unmasked(treeOf(path.join(bundle, 'rootfs'), { skip: ['.'] }))), [])

  // GNU tar has no whiteouts, so only the single-layer case compares: the edited tree as one layer.
  if (!requireTool(t, 'tar')) return
  const full = path.join(dir, 'full.tar')
  fs.writeFileSync(full, await buffer(tarDirectory(root)))
  const out = path.join(dir, 'gnu')
  fs.mkdirSync(out)
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', full, '-C', out])
  assert.deepEqual(diffTrees(treeOf(root, { skip: ['.'] }), treeOf(out, { skip: ['.'] })), [])
})

test('diff of a root that no longer exists rejects changes and errors the stream', async (t) => {
  const { root } = await setup(t)
  const before = await takeSnapshot(root)
  fs.rmSync(root, { recursive: true })
  const { stream, changes, snapshot } = diffLayer(root, before)
  await assert.rejects(changes, (e: unknown) => isLadingError(e, 'NOT_FOUND'))
  await assert.rejects(snapshot)
  await assert.rejects(buffer(stream), (e: unknown) => isLadingError(e, 'NOT_FOUND'))
})

test('sockets are neither added to nor whited out of a layer', async (t) => {
  const { root } = await setup(t)
  const net = await import('node:net')
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(path.join(root, 'sock'), resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const before = await takeSnapshot(root)
  assert.equal(before.entries.get('sock')?.type, 'socket')
  const first = diffLayer(root, before)
  assert.deepEqual(await first.changes, [])
  first.stream.destroy()
  const withoutSocket = await takeSnapshot(root)
  withoutSocket.entries.delete('sock')
  const second = diffLayer(root, withoutSocket)
  assert.deepEqual(
    (await second.changes).filter((c) => c.path === 'sock'),
    [],
    'a new socket is not added',
  )
  second.stream.destroy()
})
