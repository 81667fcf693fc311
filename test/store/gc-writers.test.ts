/**
 * gc and writers (issue 10 item 1): gc never removes what a live writer is about to reference
 * (writer leases, src/store/writer-lease.ts), and a writer never tags an image whose blobs are
 * gone (checked under the index lock). Every writer: copy into oci:, new, config/writeImage,
 * insert/repack (appendLayer), tag.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { appendLayer } from '../../src/bundle/append-layer.js'
import { copyImage } from '../../src/copy/copy.js'
import { isLadingError } from '../../src/errors.js'
import { writeImage } from '../../src/store/image.js'
import { Layout } from '../../src/store/layout.js'
import { newImage } from '../../src/store/new-image.js'
import { resolveImage } from '../../src/store/resolve.js'
import { validateLayout } from '../../src/store/validate-layout.js'
import { LEASE_PREFIX, acquireWriterLease, oldestLiveLease } from '../../src/store/writer-lease.js'
import { Annotation } from '../../src/spec/media-types.js'
import type { ImageDestination } from '../../src/transport/types.js'
import { openDestination, openSource } from '../../src/transport/open.js'
import { parseReference } from '../../src/transport/reference.js'
import { cliPath } from '../helpers/cli.js'
import { makeTar } from '../helpers/raw-layout.js'
import { initImage, putImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

async function blobNames(layout: Layout): Promise<Set<string>> {
  const out = new Set<string>()
  for await (const b of layout.listBlobs()) out.add(b.digest)
  return out
}

/** A destination that runs `beforeCommit` between the last blob/manifest put and commit(). */
function interposed(dest: ImageDestination, beforeCommit: () => Promise<void>): ImageDestination {
  return {
    ref: dest.ref,
    capabilities: dest.capabilities,
    hasBlob: (d) => dest.hasBlob(d),
    putBlob: (b, e, o) => dest.putBlob(b, e, o),
    putManifest: (r, t) => dest.putManifest(r, t),
    commit: async () => {
      await beforeCommit()
      await dest.commit()
    },
    close: () => dest.close(),
    [Symbol.asyncDispose]: () => dest.close(),
  }
}

async function copyWith(from: string, to: string, beforeCommit: () => Promise<void>): Promise<void> {
  const src = await openSource(parseReference(from))
  const dest = await openDestination(parseReference(to))
  try {
    await copyImage(src, interposed(dest, beforeCommit))
  } finally {
    await dest.close()
    await src.close()
  }
}

test('regression (issue 10 #1): gc between a copy storing its blobs and tagging them removes none of them; the tag names a valid image', async (t) => {
  const tmpDir = tempDir(t)
  await initImage(path.join(tmpDir, 'src'), { layerBytes: 64 * 1024 }, 't')
  const destDir = path.join(tmpDir, 'dest')
  let removed = -1
  await copyWith(`oci:${path.join(tmpDir, 'src')}:t`, `oci:${destDir}:x`, async () => {
    const layout = await Layout.open(destDir)
    removed = (await layout.gc()).removed.length
  })
  assert.equal(removed, 0, 'gc removed blobs the copy had stored and was about to tag')
  const r = await validateLayout(destDir)
  assert.deepEqual(r.problems, [])
  const layout = await Layout.open(destDir)
  assert.equal((await layout.listTags()).map((x) => x.tag).join(), 'x')
  // The lease is gone with the copy: nothing of it is left in the layout.
  assert.deepEqual(
    (await fsp.readdir(destDir)).filter((n) => n.startsWith(LEASE_PREFIX)),
    [],
  )
})

test('regression (issue 10 #1): a writer never tags an image whose blobs are gone: copy commit and setTag check the whole image under the index lock', async (t) => {
  const tmpDir = tempDir(t)
  const img = await initImage(path.join(tmpDir, 'src'), {}, 't')
  const destDir = path.join(tmpDir, 'dest')
  // An existing layout (a failed copy removes a directory it created itself, issue 10 #8).
  await Layout.init(destDir)
  // Another tool's gc (no leases) removes a layer between the blobs and the tag.
  await assert.rejects(
    copyWith(`oci:${path.join(tmpDir, 'src')}:t`, `oci:${destDir}:x`, async () => {
      await fsp.rm((await Layout.open(destDir)).blobPath(img.layers[1]!.digest))
    }),
    (e: unknown) => isLadingError(e, 'BLOB_UNKNOWN') && e.message.includes(img.layers[1]!.digest) && /nothing was tagged/i.test(e.message),
  )
  const dest = await Layout.open(destDir)
  assert.deepEqual(await dest.listTags(), [])

  // setTag (lading tag, and every writer through writeImage) checks config and layers too, not only the manifest.
  const src = await Layout.open(path.join(tmpDir, 'src'))
  const other = await putImage(src, { layers: 2 })
  await fsp.rm(src.blobPath(other.config.digest))
  await assert.rejects(src.setTag('broken', other.manifest), (e: unknown) => isLadingError(e, 'BLOB_UNKNOWN') && e.message.includes(other.config.digest))
  assert.equal((await src.tagEntries('broken')).length, 0)
  const r = await validateLayout(path.join(tmpDir, 'src'), { tag: 't' })
  assert.deepEqual(r.problems, [])
})

test('gc keeps blobs stored or reused under a live writer lease, and sweeps them once the lease is released or its process is dead', async (t) => {
  const tmpDir = tempDir(t)
  const layout = await Layout.init(path.join(tmpDir, 'l'))
  const old = await layout.putBlob(Buffer.from('old and unreferenced'))
  const past = new Date(Date.now() - 3600_000)
  await fsp.utimes(layout.blobPath(old.digest), past, past)
  const lease = await acquireWriterLease(layout)
  const fresh = await layout.putBlob(Buffer.from('stored under the lease'))
  const reused = await layout.putBlob(Buffer.from('old, but put again by the writer'))
  await fsp.utimes(layout.blobPath(reused.digest), past, past)
  await layout.touchBlob(reused.digest) // what a writer does with a blob it finds already there
  const r1 = await layout.gc()
  assert.deepEqual(
    r1.removed.map((b) => b.digest),
    [old.digest],
  )
  assert.ok((await blobNames(layout)).has(fresh.digest))
  await lease.release()
  const r2 = await layout.gc()
  assert.deepEqual(r2.removed.map((b) => b.digest).sort(), [fresh.digest, reused.digest].sort())

  // A lease left by a process that died protects nothing and is removed by gc.
  const deadFile = path.join(layout.dir, `${LEASE_PREFIX}999999999-abcdef`)
  await fsp.writeFile(deadFile, JSON.stringify({ pid: 999_999_999, hostname: (await import('node:os')).hostname(), started: Date.now() - 1000 }))
  const loose = await layout.putBlob(Buffer.from('loose'))
  assert.equal(await oldestLiveLease(layout), undefined)
  assert.deepEqual(
    (await layout.gc()).removed.map((b) => b.digest),
    [loose.digest],
  )
  await assert.rejects(fsp.stat(deadFile), { code: 'ENOENT' })
})

test('new, config (writeImage) and insert/repack (appendLayer) survive a gc run between storing their blobs and tagging', async (t) => {
  const tmpDir = tempDir(t)
  const layout = await Layout.init(path.join(tmpDir, 'l'))
  // gc runs right before each tag is written, as a concurrent `lading gc` could.
  const setTag = layout.setTag.bind(layout)
  let gcRuns = 0
  layout.setTag = async (tag, desc) => {
    const r = await layout.gc()
    gcRuns++
    assert.deepEqual(r.removed, [], `gc removed blobs of ${tag} before it was tagged`)
    return setTag(tag, desc)
  }
  const created = await newImage(layout, 'new', { os: 'linux', architecture: 'amd64' })
  const base = await resolveImage(layout, { tag: 'new' }, 'any')
  const edited = await writeImage(layout, { config: { ...base.config, author: 'me' }, manifest: base.manifest, tag: 'config' })
  const appended = await appendLayer(layout, { manifest: base.manifest, config: base.config }, Readable.from([makeTar({ 'hello.txt': 'hi\n' })]), {
    compression: 'gzip',
    tag: 'insert',
    history: { created_by: 'test insert' },
  })
  assert.equal(gcRuns, 3)
  const tags = Object.fromEntries((await layout.listTags()).map((x) => [x.tag, x.descriptor.digest]))
  assert.deepEqual(tags, { new: created.digest, config: edited.digest, insert: appended.manifest!.digest })
  assert.deepEqual((await validateLayout(layout.dir)).problems, [])
  assert.deepEqual(
    (await fsp.readdir(layout.dir)).filter((n) => n.startsWith(LEASE_PREFIX)),
    [],
  )
})

/** Run the CLI asynchronously (so that two can race). */
function ladingAsync(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    p.stderr.on('data', (c: Buffer) => {
      stderr += c.toString()
    })
    p.on('close', (status) => resolve({ status, stderr }))
  })
}

test(
  'regression (issue 10 #1): lading copy racing lading gc in a loop ends with a valid tagged image or one clear error, never a tag naming missing blobs',
  { timeout: 240_000 },
  async (t) => {
    const tmpDir = tempDir(t)
    const srcDir = path.join(tmpDir, 'src')
    const destDir = path.join(tmpDir, 'dest')
    for (let i = 0; i < 3; i++) await initImage(srcDir, { seed: `s${i}`, layerBytes: 512 * 1024 }, `t${i}`)
    await Layout.init(destDir)
    let stop = false
    let gcs = 0
    const gcLoop = (async () => {
      while (!stop) {
        const r = await ladingAsync(['gc', '--layout', destDir])
        assert.equal(r.status, 0, r.stderr)
        gcs++
      }
    })()
    const outcomes: string[] = []
    try {
      for (let i = 0; i < 6; i++) {
        // Untag between rounds so that gc has something to sweep while the next copy writes.
        const tag = `x${i}`
        const r = await ladingAsync(['copy', '--quiet', `oci:${srcDir}:t${i % 3}`, `oci:${destDir}:${tag}`])
        if (r.status === 0) {
          outcomes.push('ok')
        } else {
          assert.equal(r.status, 1)
          assert.match(r.stderr.trim(), /^lading: [^\n]+$/, 'one clear line')
          outcomes.push('error')
        }
        const v = await validateLayout(destDir)
        assert.deepEqual(v.problems, [], `after copy ${i} (${outcomes[i]})`)
        const tags = (await (await Layout.open(destDir)).listTags()).map((x) => x.tag)
        assert.equal(tags.includes(tag), r.status === 0)
        if (r.status === 0) await (await Layout.open(destDir)).removeTag(tag)
      }
    } finally {
      stop = true
      await gcLoop
    }
    assert.ok(gcs > 0)
    // Leases protect the copies: every one succeeds.
    assert.deepEqual(outcomes, ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'])
    const index = JSON.parse(await fsp.readFile(path.join(destDir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> }
    assert.equal(index.manifests.filter((m) => m.annotations?.[Annotation.RefName]).length, 0)
  },
)
