/**
 * The one-call copy (src/copy/copy-references.ts) and disposable ends: `copy(from, to, { signal })`
 * opens, copies and closes on every path, also when aborted; `await using` closes a source and a
 * destination when the block is left, and a destination left before its commit removes what it
 * made (ImageDestination.close).
 */
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { after, before, test } from 'node:test'
import { copy } from '../../src/copy/copy-references.js'
import { isLadingError } from '../../src/errors.js'
import { Layout } from '../../src/store/layout.js'
import { openDestination, openSource } from '../../src/transport/open.js'
import { parseReference } from '../../src/transport/reference.js'
import { initImage, type StoredImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-copy-call-' })
let src: string
let img: StoredImage

before(async () => {
  src = path.join(tmp, 'src')
  img = await initImage(src, { layerBytes: 1 << 20 }, 't')
})

const exists = (p: string): Promise<boolean> =>
  fsp.stat(p).then(
    () => true,
    () => false,
  )

test('copy() takes references as strings or parsed, and leaves the copied image', async () => {
  const r1 = await copy(`oci:${src}:t`, `oci:${path.join(tmp, 'one')}:v1`)
  assert.equal(r1.digest, img.manifest.digest)
  const r2 = await copy(parseReference(`oci:${src}:t`), parseReference(`dir:${path.join(tmp, 'two')}`))
  assert.equal(r2.digest, img.manifest.digest)
  const layout = await Layout.open(path.join(tmp, 'one'))
  assert.deepEqual(
    (await layout.listTags()).map((t) => t.tag),
    ['v1'],
  )
})

test('copy() with a signal already aborted opens nothing and rejects with its reason', async () => {
  const dest = path.join(tmp, 'never')
  const reason = new Error('stop before starting')
  await assert.rejects(copy(`oci:${src}:t`, `oci:${dest}:t`, { signal: AbortSignal.abort(reason) }), (e) => e === reason)
  assert.equal(await exists(dest), false)
})

test('copy() aborted mid-copy closes both ends, rejects with the reason, and leaves no new layout', async () => {
  const dest = path.join(tmp, 'aborted')
  const ac = new AbortController()
  let events = 0
  await assert.rejects(
    copy(`oci:${src}:t`, `oci:${dest}:t`, {
      signal: ac.signal,
      // The first blob moving is the moment to stop: the destination exists and holds a temp file.
      onProgress: () => {
        if (events++ === 0) ac.abort()
      },
    }),
    (e) => e instanceof Error && e.name === 'AbortError',
  )
  assert.ok(events > 0, 'the copy had started')
  assert.equal(await exists(dest), false, 'the destination closed before its commit removed the layout it created')
})

test('copy() closes the source when the destination cannot be opened', async () => {
  // A compressed oci-archive: source spools to a temp dir that its close() removes: nothing may
  // stay. The destination is that same archive, which exists with content: refused at open.
  const tar = path.join(tmp, 'src.tar')
  await copy(`oci:${src}:t`, `oci-archive:${tar}:t`)
  const archive = `${tar}.gz`
  await fsp.writeFile(archive, gzipSync(await fsp.readFile(tar)))
  const spool = path.join(tmp, 'spool')
  await fsp.mkdir(spool)
  await assert.rejects(copy(`oci-archive:${archive}:t`, `oci-archive:${archive}:t`, { sourceOptions: { tmpDir: spool } }), (e) => isLadingError(e))
  assert.deepEqual(await fsp.readdir(spool), [], "the source's spool was removed")
})

test('await using closes a source and a destination; an uncommitted destination removes what it made', async () => {
  const dest = path.join(tmp, 'disposed')
  {
    await using source = await openSource(parseReference(`oci:${src}:t`))
    await using destination = await openDestination(parseReference(`oci:${dest}:t`))
    await destination.putBlob(await source.getBlob(img.layers[0]!), img.layers[0]!)
    assert.ok(await exists(dest), 'the destination made its layout')
  }
  // Left without commit(): disposal was close(), which removes the layout the destination created.
  assert.equal(await exists(dest), false)
})
