import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { digestOf, type Digest } from '../../src/digest/digest.js'
import { isLadingError, type ErrorCode } from '../../src/errors.js'
import { Layout } from '../../src/store/layout.js'
import { Annotation, MediaType } from '../../src/spec/media-types.js'
import { putImage, tempLayout } from '../fixtures/image.js'
import { tempDir, type AfterHook } from '../fixtures/temp.js'

function isCode(code: ErrorCode, re?: RegExp) {
  return (e: unknown) => isLadingError(e, code) && (re === undefined || re.test((e as Error).message))
}

async function drain(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  await pipeline(
    r,
    new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(c)
        cb()
      },
    }),
  )
  return Buffer.concat(chunks)
}

test('init creates oci-layout, index.json and blobs/sha256, and is idempotent', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  assert.deepEqual(JSON.parse(await fsp.readFile(path.join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' })
  const index = JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8'))
  assert.deepEqual(index, { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] })
  assert.ok((await fsp.stat(path.join(dir, 'blobs', 'sha256'))).isDirectory())
  const { manifest } = await putImage(layout, { layers: 1 })
  await layout.setTag('keep', manifest)
  const again = await Layout.init(dir)
  assert.deepEqual(
    (await again.listTags()).map((t) => t.tag),
    ['keep'],
  )
})

test('init refuses a non-empty directory that is not a layout', async (t) => {
  const tmpDir = tempDir(t)
  await fsp.writeFile(path.join(tmpDir, 'something'), 'x')
  await assert.rejects(Layout.init(tmpDir), isCode('EXISTS', /not empty/))
})

test('open: missing oci-layout, unknown imageLayoutVersion and missing dir are clear errors', async (t) => {
  const tmpDir = tempDir(t)
  await assert.rejects(Layout.open(path.join(tmpDir, 'nope')), isCode('NOT_FOUND', /no such layout directory/))
  await assert.rejects(Layout.open(tmpDir), isCode('INVALID_LAYOUT', /oci-layout is missing/))
  await fsp.writeFile(path.join(tmpDir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}')
  await assert.rejects(Layout.open(tmpDir), (e: unknown) => isLadingError(e) && /2\.0\.0/.test((e as Error).message))
})

test('index.json that is not JSON is reported naming the file', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  await fsp.writeFile(path.join(dir, 'index.json'), '{"schemaVersion": 2, "manifests": [')
  await assert.rejects(layout.readIndex(), (e: unknown) => isLadingError(e) && /index\.json/.test((e as Error).message))
})

test('putBlob streams, verifies and stores at blobs/<alg>/<hex>, leaving no temp file', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  const data = randomBytes(3 * 1024 * 1024 + 17)
  const digest = digestOf(data)
  const r = await layout.putBlob(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { digest, size: data.length })
  assert.deepEqual(r, { digest, size: data.length })
  assert.equal(layout.blobPath(digest), path.join(dir, 'blobs', 'sha256', digest.slice(7)))
  assert.deepEqual(await fsp.readFile(layout.blobPath(digest)), data)
  assert.deepEqual(await fsp.readdir(path.join(dir, 'blobs', 'sha256')), [digest.slice(7)])
  assert.equal(await layout.blobSize(digest), data.length)
  assert.equal(await layout.hasBlob(digest), true)
  // Without an expectation the digest is computed.
  const other = randomBytes(100)
  assert.deepEqual(await layout.putBlob(Readable.from([other])), { digest: digestOf(other), size: 100 })
  // sha512 blobs go to blobs/sha512.
  const d512 = digestOf(other, 'sha512')
  await layout.putBlob(other, { digest: d512 })
  assert.ok(await layout.hasBlob(d512))
  assert.equal(layout.blobPath(d512), path.join(dir, 'blobs', 'sha512', d512.slice(7)))
})

test('putBlob is idempotent: an existing blob is kept and the body is not read', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const data = Buffer.from('hello')
  const digest = digestOf(data)
  await layout.putBlob(data)
  const st1 = await fsp.stat(layout.blobPath(digest))
  let read = false
  const body = new Readable({
    read() {
      read = true
      this.push(Buffer.from('something else'))
      this.push(null)
    },
  })
  assert.deepEqual(await layout.putBlob(body, { digest, size: 5 }), { digest, size: 5 })
  assert.equal(read, false)
  assert.equal((await fsp.stat(layout.blobPath(digest))).ino, st1.ino)
})

test('putBlob with the wrong digest or size fails and leaves neither blob nor temp file', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  const data = randomBytes(5000)
  const wrong = digestOf(Buffer.from('other'))
  await assert.rejects(layout.putBlob(Readable.from([data]), { digest: wrong }), isCode('DIGEST_MISMATCH', new RegExp(`expected ${wrong}`)))
  await assert.rejects(layout.putBlob(Readable.from([data]), { digest: digestOf(data), size: 4999 }), isCode('SIZE_MISMATCH'))
  await assert.rejects(layout.putBlob(Readable.from([data]), { digest: digestOf(data), size: 5001 }), isCode('SIZE_MISMATCH'))
  await assert.rejects(layout.putBlob(data, { digest: wrong }), isCode('DIGEST_MISMATCH'))
  assert.deepEqual(await fsp.readdir(path.join(dir, 'blobs', 'sha256')), [])
})

test('putBlob: a failing source stream leaves no blob and no temp file', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  async function* gen() {
    yield randomBytes(1000)
    throw new Error('source broke')
  }
  await assert.rejects(layout.putBlob(Readable.from(gen())), /source broke/)
  assert.deepEqual(await fsp.readdir(path.join(dir, 'blobs', 'sha256')), [])
})

test('getBlob returns a verifying stream; a flipped byte or truncation errors naming the digest', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const data = randomBytes(2 * 1024 * 1024)
  const { digest, size } = await layout.putBlob(data)
  assert.deepEqual(await drain(await layout.getBlob({ digest, size })), data)
  const p = layout.blobPath(digest)
  const flipped = Buffer.from(data)
  flipped[12345] = flipped[12345]! ^ 1
  await fsp.writeFile(p, flipped)
  await assert.rejects(async () => drain(await layout.getBlob({ digest, size })), isCode('DIGEST_MISMATCH', new RegExp(digest)))
  await assert.rejects(layout.readBlob({ digest, size }, 8 * 1024 * 1024), isCode('DIGEST_MISMATCH'))
  await fsp.writeFile(p, data.subarray(0, 1000))
  await assert.rejects(layout.getBlob({ digest, size }), isCode('SIZE_MISMATCH', /expected 2097152 bytes, file has 1000/))
  await assert.rejects(async () => drain(await layout.getBlob({ digest })), isCode('DIGEST_MISMATCH'))
})

test('getBlob/readBlob of an absent blob is BLOB_UNKNOWN naming the digest', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const d = digestOf('absent')
  await assert.rejects(layout.getBlob({ digest: d }), isCode('BLOB_UNKNOWN', new RegExp(d)))
  await assert.rejects(layout.readBlob({ digest: d }), isCode('BLOB_UNKNOWN', new RegExp(d)))
  assert.equal(await layout.hasBlob(d), false)
  assert.equal(await layout.blobSize(d), undefined)
})

test('readBlob refuses documents above the size cap before reading them', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const data = randomBytes(2000)
  const { digest } = await layout.putBlob(data)
  await assert.rejects(layout.readBlob({ digest }, 1000), isCode('SIZE_LIMIT', /2000 bytes/))
  assert.deepEqual(await layout.readBlob({ digest }, 2000), data)
})

test('security: a blob that is a symlink is refused, not followed (hostile layout)', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  const secret = path.join(dir, '..', 'secret')
  await fsp.writeFile(secret, 'secret')
  const d = digestOf('secret') as Digest
  await fsp.symlink(secret, layout.blobPath(d))
  await assert.rejects(layout.getBlob({ digest: d }), isCode('INVALID_LAYOUT', /symbolic link/))
  await assert.rejects(layout.readBlob({ digest: d }), isCode('INVALID_LAYOUT', /symbolic link/))
  await assert.rejects(layout.hasBlob(d), isCode('INVALID_LAYOUT', /symbolic link/))
  const names = []
  for await (const b of layout.listBlobs()) names.push(b.digest)
  assert.deepEqual(names, [])
})

test('security: a blob that is a directory or FIFO is refused', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const d = digestOf('dir') as Digest
  await fsp.mkdir(layout.blobPath(d))
  await assert.rejects(layout.getBlob({ digest: d }), isCode('INVALID_LAYOUT', /directory/))
  // A FIFO would block a plain open(2) forever: it must be refused without hanging.
  const f = digestOf('fifo') as Digest
  execFileSync('mkfifo', [layout.blobPath(f)])
  await assert.rejects(layout.getBlob({ digest: f }), isCode('INVALID_LAYOUT', /not a regular file/))
  await assert.rejects(layout.readBlob({ digest: f }), isCode('INVALID_LAYOUT', /not a regular file/))
  await fsp.rm(path.join(layout.dir, 'index.json'))
  execFileSync('mkfifo', [path.join(layout.dir, 'index.json')])
  await assert.rejects(layout.readIndex(), isCode('INVALID_LAYOUT', /not a regular file/))
})

/** A fresh layout whose `rel` (blobs, blobs/sha256) is a symlink to an empty directory outside it. */
async function withSymlinkedBlobDir(hook: AfterHook, rel: string, fn: (layout: Layout, outside: string) => Promise<void>): Promise<void> {
  const tmp = tempDir(hook)
  const dir = path.join(tmp, 'layout')
  await Layout.init(dir)
  const outside = path.join(tmp, 'outside')
  await fsp.mkdir(outside)
  await fsp.rm(path.join(dir, rel), { recursive: true })
  await fsp.symlink(outside, path.join(dir, rel))
  await fn(await Layout.open(dir), outside)
}

test('security: a blobs/sha256 directory that is a symlink is refused for reads and writes', async (t) => {
  await withSymlinkedBlobDir(t, path.join('blobs', 'sha256'), async (layout, outside) => {
    await assert.rejects(layout.putBlob(Buffer.from('x')), isCode('INVALID_LAYOUT', /blobs\/sha256 is a symbolic link/))
    await assert.rejects(layout.getBlob({ digest: digestOf('x') }), isCode('INVALID_LAYOUT'))
    assert.deepEqual(await fsp.readdir(outside), [])
  })
})

test('security: a blobs directory that is a symlink is refused before anything is created through it', async (t) => {
  await withSymlinkedBlobDir(t, 'blobs', async (layout, outside) => {
    await assert.rejects(layout.putBlob(Buffer.from('x')), isCode('INVALID_LAYOUT', /blobs is a symbolic link/))
    await assert.rejects(layout.readBlob({ digest: digestOf('x') }), isCode('INVALID_LAYOUT'))
    assert.deepEqual(await fsp.readdir(outside), [], 'no blobs/sha256 made through the link')
  })
})

test('security: index.json and oci-layout that are symlinks are refused', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  const elsewhere = path.join(dir, '..', 'elsewhere.json')
  await fsp.writeFile(elsewhere, '{"schemaVersion":2,"manifests":[]}')
  await fsp.rm(path.join(dir, 'index.json'))
  await fsp.symlink(elsewhere, path.join(dir, 'index.json'))
  await assert.rejects(layout.readIndex(), isCode('INVALID_LAYOUT', /symbolic link/))
  await fsp.rm(path.join(dir, 'oci-layout'))
  await fsp.symlink(elsewhere, path.join(dir, 'oci-layout'))
  await assert.rejects(Layout.open(dir), isCode('INVALID_LAYOUT', /symbolic link/))
})

test('listBlobs lists regular blobs with sizes and skips temp files and junk names', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  const a = await layout.putBlob(Buffer.from('a'))
  const b = await layout.putBlob(Buffer.from('bb'))
  const alg = path.join(dir, 'blobs', 'sha256')
  await fsp.writeFile(path.join(alg, `.${b.digest.slice(7)}.tmp-1-abcdef`), 'partial')
  await fsp.writeFile(path.join(alg, 'not-a-digest'), 'junk')
  await fsp.mkdir(path.join(dir, 'blobs', 'md5'))
  const got = []
  for await (const x of layout.listBlobs()) got.push(x)
  assert.deepEqual(
    got.sort((x, y) => x.digest.localeCompare(y.digest)),
    [a, b].sort((x, y) => x.digest.localeCompare(y.digest)),
  )
  assert.equal((await layout.listTempFiles()).length, 1)
})

test('deleteBlob removes a blob and is a no-op when absent', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const { digest } = await layout.putBlob(Buffer.from('x'))
  await layout.deleteBlob(digest)
  assert.equal(await layout.hasBlob(digest), false)
  await layout.deleteBlob(digest)
})

test('tags: set, list, resolve, move and remove ref.name annotations in index.json', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  const one = await putImage(layout, { layers: 1 })
  const two = await putImage(layout, { layers: 1 })
  await layout.setTag('v1', one.manifest)
  await layout.setTag('latest', one.manifest)
  await layout.setTag('v2', { ...two.manifest, annotations: { 'x.y': 'z' } })
  assert.deepEqual(
    (await layout.listTags()).map((t) => t.tag),
    ['v1', 'latest', 'v2'],
  )
  assert.equal((await layout.resolveTag('v2')).annotations?.['x.y'], 'z')
  await layout.setTag('latest', two.manifest)
  assert.equal((await layout.resolveTag('latest')).digest, two.manifest.digest)
  assert.equal((await layout.readIndex()).manifests.length, 3)
  await layout.removeTag('v1')
  assert.deepEqual((await layout.listTags()).map((t) => t.tag).sort(), ['latest', 'v2'])
  await assert.rejects(layout.resolveTag('v1'), isCode('NOT_FOUND', /tag "v1" not found in layout .*tags: v2, latest/))
  await assert.rejects(layout.removeTag('v1'), isCode('NOT_FOUND', /"v1"/))
  const raw = JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8'))
  assert.equal(raw.manifests[0].annotations[Annotation.RefName], 'v2')
  assert.equal(await fsp.readdir(dir).then((n) => n.filter((x) => x.includes('lock')).length), 0)
})

test('setTag refuses invalid tags and dangling descriptors', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const { manifest } = await putImage(layout, { layers: 1 })
  await assert.rejects(layout.setTag('bad tag', manifest), isCode('TAG_INVALID'))
  await assert.rejects(layout.setTag('-x', manifest), isCode('TAG_INVALID'))
  const absent = { ...manifest, digest: digestOf('nothing') }
  await assert.rejects(layout.setTag('ok', absent), isCode('BLOB_UNKNOWN', /not in layout/))
  assert.deepEqual(await layout.listTags(), [])
})

test('updateIndex keeps unknown fields and untagged entries of index.json', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  const { manifest } = await putImage(layout, { layers: 1 })
  await fsp.writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [manifest], annotations: { a: 'b' }, 'x-extra': 1 }))
  await layout.setTag('t', manifest)
  const raw = JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8'))
  assert.equal(raw.manifests.length, 2)
  assert.deepEqual(raw.annotations, { a: 'b' })
  assert.equal(raw['x-extra'], 1)
})

test('putManifest checks the document against its media type; getManifest returns verified bytes', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const bad = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: 'sha256:XYZ', size: 1 },
      layers: [],
    }),
  )
  await assert.rejects(layout.putManifest(bad, MediaType.OciManifest), isCode('INVALID_MANIFEST'))
  const { manifest } = await putImage(layout, { layers: 1 })
  const raw = await layout.getManifest({ digest: manifest.digest, size: manifest.size })
  assert.equal(raw.mediaType, MediaType.OciManifest)
  assert.equal(digestOf(raw.bytes), manifest.digest)
})

test('init: concurrent inits of one directory all succeed and leave one layout', async (t) => {
  const tmpDir = tempDir(t)
  const dir = path.join(tmpDir, 'l')
  const layouts = await Promise.all(Array.from({ length: 6 }, () => Layout.init(dir)))
  assert.equal(layouts.length, 6)
  assert.deepEqual((await fsp.readdir(dir)).sort(), ['blobs', 'index.json', 'oci-layout'])
})

test('updateIndex never writes an index.json it would refuse to read', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const dir = layout.dir
  const before = await fsp.readFile(path.join(dir, 'index.json'))
  await assert.rejects(
    layout.updateIndex((index) => ({ ...index, manifests: [{ mediaType: MediaType.OciManifest, digest: 'sha256:nope' as Digest, size: 1 }] })),
    isCode('INVALID_INDEX'),
  )
  assert.deepEqual(await fsp.readFile(path.join(dir, 'index.json')), before)
})

test('putBlob of an existing blob refreshes its mtime (so gc --keep-recent spares a re-put blob)', async (t) => {
  const layout = await tempLayout(t, 'layout')
  const { digest } = await layout.putBlob(Buffer.from('again'))
  const old = new Date(Date.now() - 3_600_000)
  await fsp.utimes(layout.blobPath(digest), old, old)
  await layout.putBlob(Buffer.from('again'))
  assert.ok(Date.now() - (await fsp.stat(layout.blobPath(digest))).mtimeMs < 60_000)
  await fsp.utimes(layout.blobPath(digest), old, old)
  await layout.putBlob(Readable.from([Buffer.from('again')]), { digest })
  assert.ok(Date.now() - (await fsp.stat(layout.blobPath(digest))).mtimeMs < 60_000)
})
