import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { IdRemapStream, inverseMapper } from '../../src/bundle/id-remap.js'
import { writeTar, type TarSource } from '../../src/layer/tar-writer.js'
import { tarEntries } from '../fixtures/tar.js'

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of r) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

test('inverseMapper: host ids inside a mapping go back to container ids; plain rootless maps the user to 0', () => {
  const m = inverseMapper(
    [
      { containerId: 0, hostId: 100000, size: 65536 },
      { containerId: 70000, hostId: 500, size: 1 },
    ],
    1001,
  )
  assert.equal(m(100000), 0)
  assert.equal(m(101000), 1000)
  assert.equal(m(500), 70000)
  assert.equal(m(42), 42)
  const r = inverseMapper(undefined, 1001)
  assert.equal(r(1001), 0)
  assert.equal(r(7), 7)
})

test('IdRemapStream rewrites ustar and pax ids, keeps data and long names intact, output is a valid tar', async () => {
  const long = 'd/' + 'x'.repeat(150)
  const sources: TarSource[] = [
    { entry: { path: 'd', type: 'directory', mode: 0o755, uid: 1001, gid: 1001, mtimeNs: 0n } },
    { entry: { path: 'd/f', type: 'file', mode: 0o644, uid: 1001, gid: 5, size: 5, mtimeNs: 0n }, content: { data: Buffer.from('hello') } },
    {
      entry: { path: long, type: 'file', mode: 0o600, uid: 3_000_000, gid: 3_000_001, size: 700, mtimeNs: 0n, xattrs: { 'user.k': Buffer.from('v') } },
      content: { data: Buffer.alloc(700, 1) },
    },
  ]
  const mapper = inverseMapper(
    [
      { containerId: 0, hostId: 1001, size: 1 },
      { containerId: 10, hostId: 3_000_000, size: 2 },
    ],
    undefined,
  )
  const remap = new IdRemapStream(mapper, mapper)
  const outP = collect(remap)
  await pipeline(writeTar(sources), remap)
  const entries = await tarEntries(await outP)
  assert.deepEqual(
    entries.map((e) => [e.name.replace(/\/$/, ''), e.uid, e.gid, e.size]),
    [
      ['d', 0, 0, 0],
      ['d/f', 0, 5, 5],
      [long, 10, 11, 700],
    ],
  )
  assert.equal(entries[1]!.body.toString(), 'hello')
  assert.ok(entries[2]!.body.equals(Buffer.alloc(700, 1)))
})

test('IdRemapStream refuses a truncated tar', async () => {
  const remap = new IdRemapStream(
    (x) => x,
    (x) => x,
  )
  await assert.rejects(
    pipeline(Readable.from([Buffer.alloc(300, 1)]), remap, async function* (src) {
      for await (const _ of src) yield _
    }),
    /ended inside an entry/,
  )
})
