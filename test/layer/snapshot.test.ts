import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { isLadingError } from '../../src/errors.js'
import { compareNames, loadSnapshot, saveSnapshot, takeSnapshot } from '../../src/layer/snapshot.js'
import { buildTree, isRoot } from './fixture-tree.js'
import { tempDir } from '../fixtures/temp.js'

test('takeSnapshot records type, mode, ids, size, ns mtime, inode, nlink, link target, devices and xattrs', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const root = path.join(dir, 'root')
  const info = buildTree(root)
  const s = await takeSnapshot(root)
  const e = (p: string) => s.entries.get(p)!
  assert.equal(e('').type, 'directory')
  assert.equal(e('etc/passwd').type, 'file')
  assert.equal(e('etc/passwd').size, 30)
  assert.equal(e('usr/bin/suid').mode, 0o4755)
  assert.equal(e('tmp').mode, 0o1777)
  assert.equal(e('usr/bin/link').type, 'symlink')
  assert.equal(e('usr/bin/link').link, 'tool')
  assert.equal(e('fifo').type, 'fifo')
  assert.equal(e('hl/orig').nlink, 2)
  assert.equal(e('hl/orig').ino, e('hl/second').ino)
  assert.equal(e('etc/passwd').mtimeNs, BigInt(Date.parse('2021-06-01T12:00:00Z')) * 1_000_000n)
  if (isRoot) {
    assert.equal(e('ids/f').uid, 3000000)
    assert.deepEqual([e('dev-blk').type, e('dev-blk').devmajor, e('dev-blk').devminor], ['block', 7, 200])
  }
  if (info.xattrs) assert.equal(e('xat/f').xattrs?.['user.color']?.toString(), 'blue')
  // Walk order: parents before children, siblings by name bytes.
  const keys = [...s.entries.keys()]
  assert.ok(keys.indexOf('usr') < keys.indexOf('usr/bin') && keys.indexOf('usr/bin') < keys.indexOf('usr/bin/tool'))
})

test('saveSnapshot / loadSnapshot round trip exactly (bigints, xattr bytes, order)', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const root = path.join(dir, 'root')
  buildTree(root)
  const s = await takeSnapshot(root)
  const file = path.join(dir, 'snap.jsonl')
  await saveSnapshot(s, file)
  const back = await loadSnapshot(file)
  assert.equal(back.root, s.root)
  assert.deepEqual([...back.entries.keys()], [...s.entries.keys()])
  assert.deepEqual(back.entries, s.entries)
  assert.ok(!fs.readdirSync(dir).some((n) => n.includes('.tmp-')), 'no temp file left behind')
})

test('loadSnapshot refuses truncated, malformed and hostile snapshot files', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const root = path.join(dir, 'root')
  buildTree(root)
  const file = path.join(dir, 'snap.jsonl')
  await saveSnapshot(await takeSnapshot(root), file)
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n')
  const bad = path.join(dir, 'bad.jsonl')
  const cases: Array<[string, string]> = [
    ['truncated', lines.slice(0, -3).join('\n')],
    ['not json', `${lines[0]}\n{oops\n`],
    ['wrong format', `{"format":"other","version":1,"root":"/","count":0}\n`],
    ['escaping path', `${lines[0]!.replace(/"count":\d+/, '"count":1')}\n["../../etc","file",420,0,0,0,"0","0","1","1",1,null,null,null,null]\n`],
    ['bad mode', `${lines[0]!.replace(/"count":\d+/, '"count":1')}\n["a","file",99999,0,0,0,"0","0","1","1",1,null,null,null,null]\n`],
  ]
  for (const [what, text] of cases) {
    fs.writeFileSync(bad, text)
    await assert.rejects(loadSnapshot(bad), (e: unknown) => isLadingError(e, 'INVALID_DOCUMENT'), what)
  }
  await assert.rejects(loadSnapshot(path.join(dir, 'missing')), (e: unknown) => isLadingError(e, 'NOT_FOUND'))
})

test('takeSnapshot refuses a root that is not a directory', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  fs.writeFileSync(path.join(dir, 'f'), '')
  fs.symlinkSync(dir, path.join(dir, 'l'))
  await assert.rejects(takeSnapshot(path.join(dir, 'f')), (e: unknown) => isLadingError(e, 'USAGE'))
  await assert.rejects(takeSnapshot(path.join(dir, 'l')), (e: unknown) => isLadingError(e, 'USAGE'), 'a symlinked root is not followed')
})

test('compareNames orders by UTF-8 bytes', () => {
  assert.ok(compareNames('a', 'b') < 0)
  assert.ok(compareNames('Z', 'a') < 0)
  // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (4 bytes, F0 ...) by bytes, unlike UTF-16 order.
  assert.ok(compareNames('\uff5e', '\u{1f600}') < 0)
})

test('a file name that is not valid UTF-8 is refused clearly, not archived under a mangled name', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-lw-' })
  const bad = Buffer.concat([Buffer.from(path.join(dir, 'caf')), Buffer.from([0xe9])]) // latin1 "café"
  fs.writeFileSync(bad, 'x')
  await assert.rejects(takeSnapshot(dir), (e: unknown) => isLadingError(e, 'UNSUPPORTED') && /not valid UTF-8/.test(e.message))
})
