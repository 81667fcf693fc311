/**
 * Security rule (nothing is lost): the content-store sweep of online gc never removes a blob that
 * an upload commit of the same digest has just found present. The sweep claims a digest in the
 * same tick as it reads the pins (InFlight.claimForRemoval) and a commit pins and then waits for
 * any removal in progress (InFlight.pinSettled), so the commit either keeps the old blob or
 * writes it anew, never reports success on a blob that vanishes.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { digestOf } from '../../src/digest/index.js'
import { InFlight } from '../../src/server/gc.js'
import { FsRegistryStorage } from '../../src/server/storage.js'
import { tempDir } from '../fixtures/temp.js'

test('InFlight: a pinned digest cannot be claimed for removal, and pinSettled waits for a removal in progress', async () => {
  const f = new InFlight()
  const unpin = f.pin(['sha256:a'])
  assert.equal(f.claimForRemoval('sha256:a'), undefined, 'pinned: kept')
  unpin()
  const release = f.claimForRemoval('sha256:a')
  assert.ok(release, 'unpinned: claimed')
  assert.equal(f.claimForRemoval('sha256:a'), undefined, 'one removal at a time')
  const order: string[] = []
  const settled = f.pinSettled(['sha256:a']).then((u) => {
    order.push('pinned')
    return u
  })
  await new Promise((r) => setImmediate(r))
  order.push('removed')
  release()
  const u = await settled
  assert.deepEqual(order, ['removed', 'pinned'])
  assert.equal(f.claimForRemoval('sha256:a'), undefined, 'pinned again after the removal')
  u()
})

test('gc content sweep racing an upload commit of the same digest keeps the uploaded blob', async (t) => {
  const root = tempDir(t, { prefix: 'lading-gc-race-' })
  const storage = new FsRegistryStorage(root)
  await storage.init()
  const bytes = randomBytes(64 * 1024)
  const digest = digestOf(bytes)
  const upload = async (): Promise<string> => {
    const id = await storage.startUpload('a/b')
    await storage.appendUpload('a/b', id, Readable.from([bytes]), 0, bytes.length)
    return id
  }
  // An old content-store blob that no repository links to any more: the sweep's victim.
  await storage.commitUpload('a/b', await upload(), digest)
  assert.equal(await storage.deleteBlob('a/b', digest), true)
  const second = await upload()

  const inFlight = new InFlight()
  let commit: Promise<void> | undefined
  const removed = await storage.sweepContent(0, (d) => {
    const release = inFlight.claimForRemoval(d)
    // The commit of a new upload of the same bytes arrives right after the sweep's decision.
    if (release && d === digest)
      commit = (async () => {
        const unpin = await inFlight.pinSettled([digest])
        try {
          await storage.commitUpload('a/b', second, digest)
        } finally {
          unpin()
        }
      })()
    return release
  })
  assert.ok(commit, 'the sweep chose the unlinked blob')
  await commit
  assert.deepEqual(
    removed.map((b) => b.digest),
    [digest],
  )
  assert.equal(await storage.statBlob('a/b', digest), bytes.length, 'the committed upload is in the repository')
  const got = await storage.openBlob('a/b', digest)
  assert.ok(got)
  try {
    const buf = Buffer.alloc(got.size)
    await got.fh.read(buf, 0, got.size, 0)
    assert.ok(buf.equals(bytes))
  } finally {
    await got.fh.close()
  }
})
