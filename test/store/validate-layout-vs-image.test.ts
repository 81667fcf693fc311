/**
 * Issue 10 item 4: `validate --layout` must find at least everything `validate --image` finds for
 * any tag. Its cache once was keyed by digest alone, so a blob checked in one role (a manifest,
 * a layer with one diff_id, a manifest claimed for one platform) was never checked in another.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { test } from 'node:test'
import { digestOf } from '../../src/digest/digest.js'
import { indexDepthMessage } from '../../src/io/limits.js'
import { Layout } from '../../src/store/layout.js'
import { validateLayout } from '../../src/store/validate-layout.js'
import { Annotation, MediaType } from '../../src/spec/media-types.js'
import type { Descriptor, ImageConfig, Manifest } from '../../src/spec/types.js'
import { formatProblem } from '../../src/spec/validate.js'
import { putImage, putIndex, withPlatform } from '../fixtures/image.js'
import { tempDir, type AfterHook } from '../fixtures/temp.js'

/** Add an index.json entry as given (lies included): what a hostile or buggy writer leaves. */
async function tagRaw(layout: Layout, tag: string, desc: Descriptor): Promise<void> {
  await layout.updateIndex((index) => ({ ...index, manifests: [...index.manifests, { ...desc, annotations: { [Annotation.RefName]: tag } }] }))
}

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64' }

/** Layouts with a good tag `a` listed first and a tag `b` that reaches the same blobs another way. */
const corruptions: Record<string, (layout: Layout) => Promise<void>> = {
  async 'a descriptor claims an index for a manifest another tag names rightly'(layout) {
    const img = await putImage(layout, { layers: 1 })
    await tagRaw(layout, 'a', img.manifest)
    await tagRaw(layout, 'b', { ...img.manifest, mediaType: MediaType.OciIndex })
  },
  async 'a layer shared with another image has a wrong diff_id in the second config (deep)'(layout) {
    const img = await putImage(layout, { layers: 1 })
    await tagRaw(layout, 'a', img.manifest)
    const config: ImageConfig = { ...amd64, rootfs: { type: 'layers', diff_ids: [digestOf(randomBytes(8))] } }
    const c = await layout.putBlob(Buffer.from(JSON.stringify(config)))
    const m: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, ...c }, layers: img.layers }
    await tagRaw(layout, 'b', await layout.putManifest(Buffer.from(JSON.stringify(m)), MediaType.OciManifest))
  },
  async 'one manifest claimed for amd64 by one index and for arm64 by another'(layout) {
    const img = await putImage(layout, { layers: 1, platform: amd64 })
    await tagRaw(layout, 'a', await putIndex(layout, [withPlatform(img.manifest, amd64)]))
    await tagRaw(layout, 'b', await putIndex(layout, [withPlatform(img.manifest, arm64)]))
  },
  async 'a second descriptor of a manifest gives the wrong size'(layout) {
    const img = await putImage(layout, { layers: 1 })
    await tagRaw(layout, 'a', img.manifest)
    await tagRaw(layout, 'b', { ...img.manifest, size: img.manifest.size + 1 })
  },
  async 'an index is shallow under one tag and too deep under another'(layout) {
    const img = await putImage(layout, { layers: 1 })
    let chain: Descriptor = img.manifest
    const levels: Descriptor[] = []
    for (let i = 0; i < 9; i++) levels.push((chain = await putIndex(layout, [chain])))
    await tagRaw(layout, 'a', levels[0]!)
    await tagRaw(layout, 'b', chain)
  },
  async 'a layer shared by two images is corrupt'(layout) {
    const img = await putImage(layout, { layers: 2 })
    await tagRaw(layout, 'a', img.manifest)
    await tagRaw(layout, 'b', await putIndex(layout, [img.manifest]))
    const { promises: fsp } = await import('node:fs')
    await fsp.writeFile(layout.blobPath(img.layers[1]!.digest), randomBytes(img.layers[1]!.size))
  },
}

async function withCorrupt(hook: AfterHook, name: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const layout = await Layout.init(path.join(tempDir(hook, { prefix: 'lading-layout-vs-image-' }), 'l'))
  await corruptions[name]!(layout)
  await fn(layout.dir)
}

const lines = (r: { problems: Parameters<typeof formatProblem>[0][] }): string[] => r.problems.map(formatProblem)

test('regression (issue 10 #4): a tag whose descriptor claims an index for a manifest blob another tag also uses is reported by --layout', async (t) => {
  await withCorrupt(t, 'a descriptor claims an index for a manifest another tag names rightly', async (dir) => {
    const image = await validateLayout(dir, { tag: 'b' })
    assert.ok(
      image.problems.some((p) => p.code === 'INVALID_INDEX'),
      lines(image).join('\n'),
    )
    const layout = await validateLayout(dir)
    for (const l of lines(image)) assert.ok(lines(layout).includes(l), `--layout misses: ${l}`)
  })
})

test('regression (issue 10 #4): with --deep, a wrong diff_id for a layer shared with another image is reported by --layout', async (t) => {
  await withCorrupt(t, 'a layer shared with another image has a wrong diff_id in the second config (deep)', async (dir) => {
    const image = await validateLayout(dir, { tag: 'b', deep: true })
    assert.ok(
      image.problems.some((p) => p.code === 'DIGEST_MISMATCH' && p.pointer === '/rootfs/diff_ids/0'),
      lines(image).join('\n'),
    )
    const layout = await validateLayout(dir, { deep: true })
    for (const l of lines(image)) assert.ok(lines(layout).includes(l), `--layout --deep misses: ${l}`)
  })
})

test('property (issue 10 #4): for every corrupted layout, every problem --image finds for any tag, --layout finds (with and without --deep)', async (t) => {
  for (const name of Object.keys(corruptions)) {
    await withCorrupt(t, name, async (dir) => {
      for (const deep of [false, true]) {
        const whole = new Set(lines(await validateLayout(dir, { deep })))
        let found = 0
        for (const tag of ['a', 'b']) {
          const image = lines(await validateLayout(dir, { tag, deep }))
          found += image.length
          for (const l of image) assert.ok(whole.has(l), `${name} (deep ${deep}): --image ${tag} finds, --layout misses: ${l}`)
        }
        // Each corruption is a real one: some tag shows it (the diff_id one only when deep).
        if (deep || !name.includes('(deep)')) assert.ok(found > 0, `${name}: no problem found at all`)
      }
    })
  }
})

test('the too-deep index is reported with the one depth message', async (t) => {
  await withCorrupt(t, 'an index is shallow under one tag and too deep under another', async (dir) => {
    const r = await validateLayout(dir)
    assert.equal(r.problems.filter((p) => p.message.endsWith(indexDepthMessage())).length, 1, lines(r).join('\n'))
    assert.deepEqual((await validateLayout(dir, { tag: 'a' })).problems, [])
  })
})
