import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { test } from 'node:test'
import zlib from 'node:zlib'
import { isLadingError } from '../../src/errors.js'
import { compress } from '../../src/io/compression.js'
import { tarDirectory } from '../../src/layer/tar-directory.js'
import { requireTool } from '../helpers/tools.js'
import { buildTree, isRoot } from './fixture-tree.js'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { diffTrees, treeOf } from '../fixtures/tree.js'
import { listTar } from '../fixtures/tar.js'
import { initImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const exec = promisify(execFile)

test('tarDirectory is deterministic: same tree twice gives the same bytes, also gzip and zstd', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const src = path.join(dir, 'src')
  buildTree(src)
  const a = await buffer(tarDirectory(src))
  const b = await buffer(tarDirectory(src))
  assert.ok(a.equals(b))
  for (const c of ['gzip', 'zstd'] as const) {
    const x = await buffer(compress(tarDirectory(src), c))
    const y = await buffer(compress(Readable.from([a]), c))
    assert.ok(x.equals(y), `${c} bytes equal`)
  }
})

test('tarDirectory: stable order (parents first, names by bytes), hardlinks as type 1, no root entry', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const src = path.join(dir, 'src')
  buildTree(src)
  const entries = await listTar(tarDirectory(src))
  const names = entries.map((e) => e.name)
  assert.ok(!names.includes('./') && !names.includes(''), 'no root entry')
  const seen = new Set<string>()
  for (const n of names) {
    const parent = n.replace(/\/$/, '').split('/').slice(0, -1).join('/')
    if (parent) assert.ok(seen.has(`${parent}/`), `${parent}/ before ${n}`)
    seen.add(n)
  }
  assert.deepEqual(
    names.filter((n) => n.startsWith('hl/')),
    ['hl/', 'hl/orig', 'hl/second'],
  )
  const second = entries.find((e) => e.name === 'hl/second')!
  assert.equal(second.type, 'link')
  assert.equal(second.linkname, 'hl/orig')
  assert.equal(entries.find((e) => e.name === 'hl/orig')!.type, 'file')
  assert.equal(entries.find((e) => e.name === 'tmp/')!.mode, 0o1777)
  assert.equal(entries.find((e) => e.name === 'usr/bin/suid')!.mode, 0o4755)
  assert.equal(entries.find((e) => e.name === 'fifo')!.type, 'fifo')
})

test('tarDirectory with a prefix, and a single file inserted at a path', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const src = path.join(dir, 'src')
  buildTree(src)
  const names = (await listTar(tarDirectory(path.join(src, 'usr'), { prefix: '/opt/app/' }))).map((e) => e.name)
  assert.deepEqual(names.slice(0, 3), ['opt/app/', 'opt/app/bin/', 'opt/app/bin/abslink'])
  const one = await listTar(tarDirectory(path.join(src, 'etc/passwd'), { prefix: 'etc/passwd.new' }))
  assert.deepEqual(
    one.map((e) => [e.name, e.type, e.data.toString()]),
    [['etc/passwd.new', 'file', 'root:x:0:0:root:/root:/bin/sh\n']],
  )
  await assert.rejects(buffer(tarDirectory(path.join(src, 'etc/passwd'))), (e: unknown) => isLadingError(e, 'USAGE'))
  assert.throws(
    () => tarDirectory(src, { prefix: '../escape' }),
    (e: unknown) => isLadingError(e, 'USAGE'),
  )
})

test('tarDirectory clamps mtimes to mtimeClamp and to SOURCE_DATE_EPOCH', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const src = path.join(dir, 'src')
  buildTree(src)
  const clamp = new Date('2000-01-01T00:00:00Z')
  const e = await listTar(tarDirectory(src, { mtimeClamp: clamp }))
  assert.ok(
    e.every((x) => x.mtime === clamp.getTime()),
    'all entries clamped',
  )
  const old = process.env['SOURCE_DATE_EPOCH']
  process.env['SOURCE_DATE_EPOCH'] = '946684800'
  try {
    const e2 = await listTar(tarDirectory(src))
    assert.ok(e2.every((x) => x.mtime === 946684800_000))
  } finally {
    if (old === undefined) delete process.env['SOURCE_DATE_EPOCH']
    else process.env['SOURCE_DATE_EPOCH'] = old
  }
})

test('tarDirectory refuses a file named like a whiteout', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  await fs.promises.writeFile(path.join(dir, '.wh.sneaky'), '')
  await assert.rejects(buffer(tarDirectory(dir)), (e: unknown) => isLadingError(e, 'UNSUPPORTED') && /whiteout/.test(e.message))
})

test('round trip: GNU tar extracts our layer to an identical tree (modes, ids, links, devices, xattrs, mtimes)', async (t) => {
  if (!requireTool(t, 'tar')) return
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const src = path.join(dir, 'src')
  const info = buildTree(src)
  const file = path.join(dir, 'layer.tar')
  await fs.promises.writeFile(file, await buffer(tarDirectory(src)))
  const out = path.join(dir, 'out')
  await fs.promises.mkdir(out)
  await exec('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', file, '-C', out])
  const want = treeOf(src, { mtimes: 'all', skip: ['.'] })
  const got = treeOf(out, { mtimes: 'all', skip: ['.'] })
  assert.deepEqual(diffTrees(want, got), [])
  if (info.xattrs) assert.ok(got.get('xat/f')!.xattrs?.includes(`user.color=${Buffer.from('blue').toString('hex')}`), 'xattr survived')
  if (isRoot) assert.equal(got.get('ids/f')!.uid, 3000000)
  assert.equal(fs.statSync(path.join(out, 'hl/orig')).ino, fs.statSync(path.join(out, 'hl/second')).ino, 'hardlink kept')
})

test('Go reads our parallel gzip: umoci unpacks a layer compressed by Lading to the same tree', async (t) => {
  if (!requireTool(t, 'umoci')) return
  if (!isRoot) {
    t.skip('umoci unpack with ownership needs root')
    return
  }
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const src = path.join(dir, 'src')
  buildTree(src)
  const tar = await buffer(tarDirectory(src))
  const gz = await buffer(compress(Readable.from([tar]), 'gzip'))
  assert.ok(zlib.gunzipSync(gz).equals(tar))
  const layout = path.join(dir, 'layout')
  await initImage(layout, { layers: [{ blob: gz, tar, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }] }, 'v1')
  const bundle = path.join(dir, 'bundle')
  await exec('umoci', ['unpack', '--image', `${layout}:v1`, bundle])
  const got = treeOf(path.join(bundle, 'rootfs'), { skip: ['.'] })
  const want = treeOf(src, { skip: ['.'] })
  // umoci keeps xattrs it can restore; compare everything else exactly and xattrs where present.
  assert.deepEqual(diffTrees(want, got), [])
})

test('zstd layer written by Lading is read by the reference zstd tool (zstd -t, zstd -dc)', async (t) => {
  // umoci 0.4.7 predates zstd layers, so the reference CLI stands in as the independent reader.
  if (!requireTool(t, 'zstd')) return
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const src = path.join(dir, 'src')
  buildTree(src)
  const tar = await buffer(tarDirectory(src))
  const file = path.join(dir, 'layer.tar.zst')
  await fs.promises.writeFile(file, await buffer(compress(Readable.from([tar]), 'zstd')))
  await exec('zstd', ['-q', '-t', file])
  const { stdout } = await exec('zstd', ['-q', '-dc', file], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })
  assert.ok(Buffer.from(stdout).equals(tar))
})
