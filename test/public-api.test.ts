/**
 * A Node program uses Lading through its package name, as an installed dependency would: the
 * small root, and every module subpath of package.json "exports", each exporting what the
 * README's Library table says it does.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { Readable } from 'node:stream'
import path from 'node:path'
import { repoRoot } from './helpers/cli.js'
import { tempDir } from './fixtures/temp.js'

test("the package's own name resolves to the public API and drives a whole edit", async (t) => {
  const lading = await import('lading')
  const { newImageConfig, editConfig, MediaType } = await import('lading/spec')
  const { digestOf, parseDigest, VerifyingStream } = await import('lading/digest')
  const { writeImage, validateLayout } = await import('lading/store')
  const { writeTar } = await import('lading/layer')
  const { compress } = await import('lading/io')
  const dir = tempDir(t, { prefix: 'lading-api-' })
  const layout = await lading.Layout.init(dir)
  const config = newImageConfig({ os: 'linux', architecture: 'amd64' }, '2024-01-01T00:00:00Z')
  const manifest = {
    schemaVersion: 2 as const,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: digestOf('{}'), size: 2 },
    layers: [],
  }
  await writeImage(layout, { config, manifest, tag: 'v1' })
  // A layer from a directory-free tar stream: one file, gzip-compressed by the library.
  const tar = writeTar([
    { entry: { path: 'hello.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtimeNs: 0n }, content: { data: Buffer.from('hi\n') } },
  ])
  const diff = new VerifyingStream({})
  const gz = compress(tar.pipe(diff), 'gzip')
  const blob = await layout.putBlob(gz as Readable)
  // The selector: a tag as a plain string.
  const img = await lading.resolveImage(layout, 'v1', 'any')
  const edited = editConfig(img.config, { env: ['A=1'], history: { created_by: 'test' } })
  edited.rootfs = { ...edited.rootfs, diff_ids: [...edited.rootfs.diff_ids, diff.result!.digest] }
  const m2 = { ...img.manifest, layers: [{ mediaType: MediaType.OciLayerGzip, digest: blob.digest, size: blob.size }] }
  const v2desc = await writeImage(layout, { config: edited, manifest: m2, tag: 'v2' })
  const v2 = await lading.resolveImage(layout, { tag: 'v2' }, 'any')
  assert.deepEqual(v2.config.config?.Env, ['A=1'])
  assert.equal(v2.manifest.layers.length, 1)
  // ... and a digest as a plain string, or as { digest }: the same image.
  assert.equal((await lading.resolveImage(layout, v2desc.digest, 'any')).manifestDescriptor.digest, v2desc.digest)
  assert.equal((await lading.resolveImage(layout, { digest: v2desc.digest }, 'any')).manifestDescriptor.digest, v2desc.digest)
  await assert.rejects(lading.resolveImage(layout, 'v3', 'any'), (e) => lading.isLadingError(e))
  const result = await validateLayout(dir)
  assert.deepEqual(result.problems, [])
  assert.deepEqual((await layout.listTags()).map((t) => t.tag).sort(), ['v1', 'v2'])
  assert.throws(
    () => parseDigest('sha256:XYZ'),
    (e) => lading.isLadingError(e, 'DIGEST_INVALID'),
  )
})

test('the root is small: the few things most programs need', async () => {
  const root = Object.keys(await import('lading')).sort()
  assert.deepEqual(
    root,
    ['Layout', 'LadingError', 'copy', 'formatReference', 'isLadingError', 'openDestination', 'openSource', 'parseReference', 'resolveImage'].sort(),
  )
})

test("every subpath of package.json exports resolves by the package's name and exports what the README says", async () => {
  const pkg = JSON.parse(await fsp.readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
  const subpaths = Object.keys(pkg.exports)
    .filter((k) => k !== '.')
    .map((k) => `lading/${k.slice(2)}`)
  const readme = await fsp.readFile(path.join(repoRoot, 'README.md'), 'utf8')
  // The Library table: | `lading/x` | what | `a`, `b` |
  const rows = new Map<string, string[]>()
  for (const m of readme.matchAll(/^\| `(lading\/[a-z-]+)` \|[^|]*\| (.*) \|$/gm)) {
    rows.set(
      m[1]!,
      [...m[2]!.matchAll(/`([A-Za-z_$][\w$]*)`/g)].map((x) => x[1]!),
    )
  }
  assert.deepEqual([...rows.keys()].sort(), [...subpaths].sort(), 'the README table lists exactly the subpaths in package.json')
  for (const sub of subpaths) {
    const mod = (await import(sub)) as Record<string, unknown>
    for (const name of rows.get(sub)!) assert.notEqual(mod[name], undefined, `${sub} exports ${name}`)
  }
  // The root's names are the same objects as in their modules: one of each thing.
  const lading = await import('lading')
  assert.equal(lading.copy, (await import('lading/copy')).copy)
  assert.equal(lading.Layout, (await import('lading/store')).Layout)
})
