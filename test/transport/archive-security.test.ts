/**
 * Archive sources read untrusted tars: one named regression test per rule. Malformed headers,
 * sizes past the end, links that climb out or loop, oversized JSON and layers that do not match
 * their diff_id all fail with one clear LadingError; nothing is ever extracted by member name.
 */
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { gunzipSync, gzipSync } from 'node:zlib'
import tarStream from 'tar-stream'
import { copyImage } from '../../src/copy/copy.js'
import { digestOf } from '../../src/digest/digest.js'
import { isLadingError } from '../../src/errors.js'
import { readTar } from '../../src/layer/tar-reader.js'
import { writeTar } from '../../src/layer/tar-writer.js'
import { Layout } from '../../src/store/layout.js'
import { TarIndex } from '../../src/transport/archive/tar-index.js'
import { openDestination, openSource } from '../../src/transport/open.js'
import { parseReference } from '../../src/transport/reference.js'
import { makeTar } from '../helpers/raw-layout.js'
import { tempDir } from '../fixtures/temp.js'

interface Entry {
  name: string
  data?: Buffer | string
  type?: 'file' | 'symlink' | 'link' | 'directory'
  linkname?: string
}

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer)
  })
  const done = new Promise<void>((resolve) => {
    pack.on('end', () => resolve())
  })
  for (const e of entries) {
    const data = e.data === undefined ? undefined : Buffer.from(e.data)
    await new Promise<void>((resolve, reject) => {
      const h = { name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}), ...(data ? { size: data.length } : {}) }
      if (data) pack.entry(h, data, (err) => (err ? reject(err) : resolve()))
      else pack.entry(h, (err) => (err ? reject(err) : resolve()))
    })
  }
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

/** A docker-archive with one image whose second layer is `layer2` (diff_ids computed from `claimed`). */
async function dockerArchive(dir: string, opts: { layer2?: Buffer; claimed?: Buffer; extra?: Entry[]; manifest?: unknown } = {}): Promise<string> {
  const l1 = makeTar({ 'a.txt': 'one' })
  const l2 = opts.layer2 ?? makeTar({ 'b.txt': 'two' })
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(l1), digestOf(opts.claimed ?? l2)] } }),
  )
  const cfgName = `${digestOf(config).slice(7)}.json`
  const manifest = opts.manifest ?? [{ Config: cfgName, RepoTags: ['example/app:t'], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]
  const file = path.join(dir, 'a.tar')
  await fsp.writeFile(
    file,
    await tarOf([
      { name: cfgName, data: config },
      { name: 'l1/layer.tar', data: l1 },
      { name: 'l2/layer.tar', data: l2 },
      ...(opts.extra ?? []),
      { name: 'manifest.json', data: JSON.stringify(manifest) },
    ]),
  )
  return file
}

async function rejectsWith(p: Promise<unknown>, code: Parameters<typeof isLadingError>[1], re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isLadingError(e, code), `expected ${code}, got ${String(e)}`)
    assert.match((e as Error).message, re)
    return true
  })
}

test('security: tar header with a bad checksum is INVALID_TAR', async (ctx) => {
  const dir = tempDir(ctx, { prefix: 'lading-archive-sec-' })
  const t = makeTar({ 'manifest.json': '[]' })
  t[0] = 'X'.charCodeAt(0) // the name changes, the stored checksum does not
  await fsp.writeFile(path.join(dir, 'x.tar'), t)
  await rejectsWith(TarIndex.open(path.join(dir, 'x.tar')), 'INVALID_TAR', /bad tar header checksum at offset 0/)
})

test('security: a member claiming bytes past the end of the archive is INVALID_TAR', async (ctx) => {
  const dir = tempDir(ctx, { prefix: 'lading-archive-sec-' })
  const t = makeTar({ 'big': Buffer.alloc(2048) })
  const cut = t.subarray(0, 512 + 1024) // header says 2048, only 1024 there
  await fsp.writeFile(path.join(dir, 'x.tar'), cut)
  await rejectsWith(TarIndex.open(path.join(dir, 'x.tar')), 'INVALID_TAR', /past the end of the archive/)
})

/** A ustar header of `type` claiming `size` bytes, followed by that many bytes. */
function member(name: string, type: string, data: Buffer): Buffer {
  const h = Buffer.alloc(512)
  h.write(name, 0, 100, 'utf8')
  h.write('0000644\0', 100)
  h.write(data.length.toString(8).padStart(11, '0') + '\0', 124)
  h.write('00000000000\0', 136)
  h.write('        ', 148)
  h.write(type, 156)
  h.write('ustar\0', 257)
  h.write('00', 263)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)])
}

test('security: oversized pax header is refused before it is read', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  const pax = member('PaxHeader', 'x', Buffer.alloc(2 * 1024 * 1024, 0x41))
  await fsp.writeFile(path.join(dir, 'x.tar'), Buffer.concat([pax, member('f', '0', Buffer.from('x')), Buffer.alloc(1024)]))
  await rejectsWith(TarIndex.open(path.join(dir, 'x.tar')), 'INVALID_TAR', /pax header larger than 1048576 bytes/)
  // A GNU long name the same.
  const gnu = member('././@LongLink', 'L', Buffer.alloc(2 * 1024 * 1024, 0x41))
  await fsp.writeFile(path.join(dir, 'y.tar'), Buffer.concat([gnu, member('f', '0', Buffer.from('x')), Buffer.alloc(1024)]))
  await rejectsWith(TarIndex.open(path.join(dir, 'y.tar')), 'INVALID_TAR', /GNU long name larger than/)
})

test('tar index: pax path and GNU long names name the member that follows', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  const long = 'd/'.repeat(80) + 'file.txt'
  const pax = member('PaxHeader', 'x', Buffer.from(`${` path=${long}\n`.length + String(` path=${long}\n`.length).length} path=${long}\n`))
  const gnuName = 'e/'.repeat(80) + 'other.txt'
  const gnu = member('././@LongLink', 'L', Buffer.from(gnuName + '\0'))
  await fsp.writeFile(
    path.join(dir, 'z.tar'),
    Buffer.concat([pax, member('short', '0', Buffer.from('one')), gnu, member('short2', '0', Buffer.from('two')), Buffer.alloc(1024)]),
  )
  const idx = await TarIndex.open(path.join(dir, 'z.tar'))
  assert.equal((await idx.read(long, 10)).toString(), 'one')
  assert.equal((await idx.read(gnuName, 10)).toString(), 'two')
  assert.equal(idx.lookup('short'), undefined)
})

/** Set a header field of the first member of `tar` to raw bytes and fix its checksum. */
function patchHeader(tar: Buffer, offset: number, bytes: Buffer): Buffer {
  const out = Buffer.from(tar)
  bytes.copy(out, offset)
  out.write('        ', 148)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += out[i]!
  out.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  return out
}

test("security: the tar index decodes headers with the layer reader's strict codec (negative base-256, garbage in numbers, malformed pax)", async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  const one = Buffer.concat([member('f', '0', Buffer.from('x')), Buffer.alloc(1024)])
  const cases: Array<[string, Buffer, RegExp]> = [
    ['neg.tar', patchHeader(one, 124, Buffer.alloc(12, 0xff)), /negative base-256 size/],
    ['garbage.tar', patchHeader(one, 124, Buffer.from('00000001\0x\0\0')), /garbage after size field/],
    ['octal.tar', patchHeader(one, 124, Buffer.from('0000000009\0\0')), /invalid octal digit in size/],
    ['pax.tar', Buffer.concat([member('PaxHeader', 'x', Buffer.from('99 path=x\n')), one]), /pax record at byte 0 has an impossible length/],
    ['paxsize.tar', Buffer.concat([member('PaxHeader', 'x', Buffer.from('11 size=-1\n')), one]), /pax size="-1" is not a non-negative integer/],
  ]
  for (const [name, bytes, re] of cases) {
    await fsp.writeFile(path.join(dir, name), bytes)
    await rejectsWith(TarIndex.open(path.join(dir, name)), 'INVALID_TAR', re)
  }
})

test('tar index and layer reader agree on the members of a tar from the layer writer (one codec)', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  const longPath = `${'deep/'.repeat(40)}file.bin`
  const longLink = `${'t/'.repeat(70)}target`
  const tar = Buffer.concat(
    (await writeTar(
      [
        { entry: { path: 'd', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n } },
        {
          entry: { path: longPath, type: 'file', mode: 0o644, uid: 3_000_000, gid: 0, mtimeNs: 1_500_000_000n, size: 3 },
          content: { data: Buffer.from('abc') },
        },
        { entry: { path: 'd/short', type: 'file', mode: 0o600, uid: 0, gid: 0, mtimeNs: 0n, size: 2 }, content: { data: Buffer.from('hi') } },
        { entry: { path: 'd/link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: 0n, linkname: longLink } },
      ],
      { subsecondMtimes: true },
    ).toArray()) as Buffer[],
  )
  await fsp.writeFile(path.join(dir, 'w.tar'), tar)
  const idx = await TarIndex.open(path.join(dir, 'w.tar'))
  const read: string[] = []
  for await (const e of readTar(Readable.from([tar]))) if (e.header.type === 'file' || e.header.type === 'symlink') read.push(e.header.path)
  assert.deepEqual(idx.names(), read)
  assert.deepEqual(read, [longPath, 'd/short', 'd/link'])
  assert.equal((await idx.read(longPath, 10)).toString(), 'abc')
  assert.equal((await idx.read('d/short', 10)).toString(), 'hi')
})

test('security: member names climbing out of the archive are never served', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  await fsp.writeFile(
    path.join(dir, 'x.tar'),
    await tarOf([
      { name: '../../etc/evil', data: 'x' },
      { name: 'ok/../../up', data: 'x' },
      { name: 'link-out', type: 'symlink', linkname: '../../../etc/passwd' },
      { name: 'loop-a', type: 'symlink', linkname: 'loop-b' },
      { name: 'loop-b', type: 'symlink', linkname: 'loop-a' },
      { name: 'abs', type: 'symlink', linkname: '/inside.txt' },
      { name: 'inside.txt', data: 'inside' },
    ]),
  )
  const idx = await TarIndex.open(path.join(dir, 'x.tar'))
  assert.equal(idx.lookup('../../etc/evil'), undefined)
  assert.equal(idx.lookup('etc/evil'), undefined, 'not clamped to the root either')
  assert.equal(idx.lookup('up'), undefined)
  assert.equal(idx.lookup('link-out'), undefined, 'a symlink leaving the archive resolves to nothing')
  assert.equal(idx.lookup('loop-a'), undefined, 'a link loop ends')
  assert.equal((await idx.read('abs', 100)).toString(), 'inside', 'an absolute link resolves inside the archive')
  assert.throws(
    () => idx.open('link-out'),
    (e: unknown) => isLadingError(e, 'NOT_FOUND'),
  )
})

test('security: docker-archive layer that does not match its diff_id fails the copy, nothing stored', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  const file = await dockerArchive(dir, { layer2: makeTar({ 'b.txt': 'TAMPERED' }), claimed: makeTar({ 'b.txt': 'two' }) })
  const src = await openSource(parseReference(`docker-archive:${file}`))
  const dest = await openDestination(parseReference(`oci:${path.join(dir, 'out')}:t`))
  try {
    await rejectsWith(copyImage(src, dest), 'DIGEST_MISMATCH', /l2\/layer\.tar: digest mismatch/)
  } finally {
    await dest.close()
    await src.close()
  }
  // The layout the failed copy created is removed again (test/copy/destination-lifecycle.test.ts).
  await assert.rejects(fsp.lstat(path.join(dir, 'out')), { code: 'ENOENT' })
})

test('security: docker-archive manifest.json larger than 4 MiB is SIZE_LIMIT', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  const file = path.join(dir, 'a.tar')
  await fsp.writeFile(file, await tarOf([{ name: 'manifest.json', data: Buffer.alloc(5 * 1024 * 1024, 0x20) }]))
  await rejectsWith(openSource(parseReference(`docker-archive:${file}`)), 'SIZE_LIMIT', /manifest\.json/)
})

test('security: docker-archive whose manifest.json names missing or mismatched members is refused', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  const missing = await dockerArchive(dir, { manifest: [{ Config: 'nope.json', RepoTags: [], Layers: [] }] })
  await rejectsWith(openSource(parseReference(`docker-archive:${missing}`)), 'INVALID_DOCUMENT', /names config nope\.json, which the archive lacks/)
  const wrong = await dockerArchive(dir, { manifest: [{ Config: 'x', RepoTags: 'not-an-array', Layers: [] }] })
  await rejectsWith(openSource(parseReference(`docker-archive:${wrong}`)), 'INVALID_DOCUMENT', /RepoTags/)
})

test('docker-archive: several images are chosen by NAME:TAG or @N; unnamed is a clear error', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  const l = makeTar({ 'a.txt': 'one' })
  const mk = (arch: string): Buffer => Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(l)] } }))
  const c1 = mk('amd64')
  const c2 = mk('arm64')
  const file = path.join(dir, 'two.tar')
  await fsp.writeFile(
    file,
    await tarOf([
      { name: 'c1.json', data: c1 },
      { name: 'c2.json', data: c2 },
      { name: 'l.tar', data: l },
      {
        name: 'manifest.json',
        data: JSON.stringify([
          { Config: 'c1.json', RepoTags: ['docker.io/library/one:latest'], Layers: ['l.tar'] },
          { Config: 'c2.json', RepoTags: ['two:v2'], Layers: ['l.tar'] },
        ]),
      },
    ]),
  )
  const configOf = async (ref: string): Promise<string> => {
    const s = await openSource(parseReference(ref))
    try {
      return JSON.parse((await s.getManifest()).bytes.toString()).config.digest
    } finally {
      await s.close()
    }
  }
  assert.equal(await configOf(`docker-archive:${file}:one`), digestOf(c1))
  assert.equal(await configOf(`docker-archive:${file}:docker.io/library/two:v2`), digestOf(c2))
  assert.equal(await configOf(`docker-archive:${file}:@1`), digestOf(c2))
  await rejectsWith(openSource(parseReference(`docker-archive:${file}`)), 'USAGE', /holds 2 images; name one/)
  await rejectsWith(openSource(parseReference(`docker-archive:${file}:three`)), 'NOT_FOUND', /no image tagged three:latest/)
  await rejectsWith(openSource(parseReference(`docker-archive:${file}:@2`)), 'NOT_FOUND', /no image @2/)
})

test('docker-archive: gzip-compressed archive and the Docker 25 layout (blobs/ + symlinked layer.tar) are read', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  const plain = await dockerArchive(dir)
  const gz = path.join(dir, 'a.tar.gz')
  await fsp.writeFile(gz, gzipSync(await fsp.readFile(plain)))
  const s1 = await openSource(parseReference(`docker-archive:${gz}`))
  const m1 = JSON.parse((await s1.getManifest()).bytes.toString())
  await s1.close()
  assert.equal(m1.layers.length, 2)
  // Docker >= 25: layers under blobs/sha256, the legacy folder's layer.tar a symlink to them, and
  // a layer kept gzip-compressed (detected by magic, hashed for its digest).
  const l1 = makeTar({ 'a.txt': 'one' })
  const l2 = makeTar({ 'b.txt': 'two' })
  const l2gz = gzipSync(l2)
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(l1), digestOf(l2)] } }))
  const hex = (b: Buffer): string => digestOf(b).slice(7)
  const file = path.join(dir, 'docker25.tar')
  await fsp.writeFile(
    file,
    await tarOf([
      { name: 'blobs/', type: 'directory' },
      { name: 'blobs/sha256/', type: 'directory' },
      { name: `blobs/sha256/${hex(config)}`, data: config },
      { name: `blobs/sha256/${hex(l1)}`, data: l1 },
      { name: `blobs/sha256/${hex(l2gz)}`, data: l2gz },
      { name: 'legacy/', type: 'directory' },
      { name: 'legacy/layer.tar', type: 'symlink', linkname: `../blobs/sha256/${hex(l1)}` },
      { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
      {
        name: 'manifest.json',
        data: JSON.stringify([{ Config: `blobs/sha256/${hex(config)}`, RepoTags: ['x:y'], Layers: ['legacy/layer.tar', `blobs/sha256/${hex(l2gz)}`] }]),
      },
    ]),
  )
  const src = await openSource(parseReference(`docker-archive:${file}`))
  const dest = await openDestination(parseReference(`oci:${path.join(dir, 'out25')}:t`))
  try {
    await copyImage(src, dest)
  } finally {
    await dest.close()
    await src.close()
  }
  const layout = await Layout.open(path.join(dir, 'out25'))
  const m = JSON.parse((await layout.readBlob(await layout.resolveTag('t'))).toString())
  // The plain layer is gzip-compressed on the way into oci: (as skopeo does); the gzip one moves as it is.
  assert.deepEqual(
    m.layers.map((l: { mediaType: string }) => l.mediaType),
    ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+gzip'],
  )
  assert.equal(m.layers[1].digest, digestOf(l2gz))
  assert.deepEqual(gunzipSync(await layout.readBlob(m.layers[0])), l1)
})

test('security: oci-archive blob with a flipped byte fails with DIGEST_MISMATCH naming the blob', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-sec-' })
  const l = gzipSync(makeTar({ 'a.txt': 'one' }))
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(makeTar({ 'a.txt': 'one' }))] } }),
  )
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(l), size: l.length }],
    }),
  )
  const flipped = Buffer.from(l)
  flipped[20] = flipped[20]! ^ 0xff
  const index = JSON.stringify({
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: digestOf(manifest),
        size: manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': 't' },
      },
    ],
  })
  const file = path.join(dir, 'o.tar')
  const h = (b: Buffer): string => `blobs/sha256/${digestOf(b).slice(7)}`
  await fsp.writeFile(
    file,
    await tarOf([
      { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', data: index },
      { name: h(config), data: config },
      { name: h(manifest), data: manifest },
      { name: h(l), data: flipped },
    ]),
  )
  const src = await openSource(parseReference(`oci-archive:${file}:t`))
  const dest = await openDestination(parseReference(`dir:${path.join(dir, 'out')}`))
  try {
    await rejectsWith(copyImage(src, dest), 'DIGEST_MISMATCH', new RegExp(`blob ${digestOf(l)}: digest mismatch`))
  } finally {
    await dest.close()
    await src.close()
  }
  // The dir: the failed copy created is removed again (test/copy/destination-lifecycle.test.ts).
  await assert.rejects(fsp.lstat(path.join(dir, 'out')), { code: 'ENOENT' })
})
