import { test } from 'node:test'
import assert from 'node:assert/strict'
import { digestOf } from '../../src/digest/digest.js'
import { isLadingError, type ErrorCode } from '../../src/errors.js'
import { resolveImage } from '../../src/store/resolve.js'
import { writeImage } from '../../src/store/image.js'
import { Annotation, MediaType } from '../../src/spec/media-types.js'
import { hostPlatform } from '../../src/spec/platform.js'
import type { Manifest } from '../../src/spec/types.js'
import { putImage, putIndex, tempLayout, withPlatform } from '../fixtures/image.js'

function isCode(code: ErrorCode, re?: RegExp) {
  return (e: unknown) => isLadingError(e, code) && (re === undefined || re.test((e as Error).message))
}

const amd64 = { os: 'linux', architecture: 'amd64' }
const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' }
const s390x = { os: 'linux', architecture: 's390x' }

test('resolveImage by tag and by digest returns manifest, config and their bytes', async (t) => {
  const layout = await tempLayout(t)
  const img = await putImage(layout, { layers: 2 })
  await layout.setTag('t', img.manifest)
  const r = await resolveImage(layout, { tag: 't' })
  assert.equal(r.manifestDescriptor.digest, img.manifest.digest)
  assert.equal(r.manifest.layers.length, 2)
  assert.equal(r.config.architecture, 'amd64')
  assert.equal(digestOf(r.configBytes), img.config.digest)
  assert.equal(digestOf(r.manifestBytes), img.manifest.digest)
  assert.equal(r.path.length, 1)
  // By digest, also when index.json does not list it (media type read from the document).
  const other = await putImage(layout, { layers: 1, docker: true })
  const byDigest = await resolveImage(layout, { digest: other.manifest.digest })
  assert.equal(byDigest.manifestDescriptor.mediaType, MediaType.DockerManifest)
  assert.equal(byDigest.config.os, 'linux')
  await assert.rejects(resolveImage(layout, { tag: 'nope' }), isCode('NOT_FOUND', /tag "nope" not found .*tags: t/))
  await assert.rejects(resolveImage(layout, { digest: digestOf('absent') }), isCode('BLOB_UNKNOWN'))
})

test('resolveImage descends nested indexes (OCI index -> Docker manifest list) choosing the platform', async (t) => {
  const layout = await tempLayout(t)
  const a = await putImage(layout, { layers: 1, platform: amd64, docker: true })
  const b = await putImage(layout, { layers: 1, platform: arm64, docker: true })
  const list = await putIndex(layout, [withPlatform(a.manifest, amd64), withPlatform(b.manifest, arm64)], { docker: true })
  const outer = await putIndex(layout, [list])
  await layout.setTag('multi', outer)
  const r = await resolveImage(layout, { tag: 'multi' }, { os: 'linux', architecture: 'arm64' })
  assert.equal(r.manifestDescriptor.digest, b.manifest.digest)
  assert.deepEqual(
    r.path.map((d) => d.digest),
    [outer.digest, list.digest, b.manifest.digest],
  )
  assert.equal(r.config.architecture, 'arm64')
  const r2 = await resolveImage(layout, { tag: 'multi' }, { os: 'linux', architecture: 'amd64' })
  assert.equal(r2.manifestDescriptor.digest, a.manifest.digest)
  // Default: the host's platform.
  const host = hostPlatform()
  if (host.architecture === 'amd64' || host.architecture === 'arm64') {
    const r3 = await resolveImage(layout, { tag: 'multi' })
    assert.equal(r3.config.architecture, host.architecture)
  }
})

test('resolveImage: PLATFORM_NOT_FOUND names the requested platform and those available', async (t) => {
  const layout = await tempLayout(t)
  const a = await putImage(layout, { layers: 1, platform: amd64 })
  const b = await putImage(layout, { layers: 1, platform: arm64 })
  const idx = await putIndex(layout, [withPlatform(a.manifest, amd64), withPlatform(b.manifest, arm64)])
  await layout.setTag('multi', idx)
  await assert.rejects(
    resolveImage(layout, { tag: 'multi' }, s390x),
    isCode('PLATFORM_NOT_FOUND', /no image for linux\/s390x; available: linux\/amd64, linux\/arm64\/v8/),
  )
})

test('resolveImage: a lone manifest resolves whatever its platform by default, but not for an explicit other platform', async (t) => {
  const layout = await tempLayout(t)
  const a = await putImage(layout, { layers: 1, platform: s390x })
  await layout.setTag('t', a.manifest)
  assert.equal((await resolveImage(layout, { tag: 't' })).config.architecture, 's390x')
  assert.equal((await resolveImage(layout, { tag: 't' }, 'any')).config.architecture, 's390x')
  assert.equal((await resolveImage(layout, { tag: 't' }, s390x)).config.architecture, 's390x')
  await assert.rejects(resolveImage(layout, { tag: 't' }, amd64), isCode('PLATFORM_NOT_FOUND', /available: linux\/s390x/))
})

test("resolveImage: index entries without platform are judged by their config; 'any' skips attestations", async (t) => {
  const layout = await tempLayout(t)
  const a = await putImage(layout, { layers: 1, platform: amd64 })
  const b = await putImage(layout, { layers: 1, platform: arm64 })
  const att = await putImage(layout, { layers: 1, platform: { os: 'unknown', architecture: 'unknown' } })
  const idx = await putIndex(layout, [
    { ...withPlatform(att.manifest, { os: 'unknown', architecture: 'unknown' }), annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
    a.manifest,
    b.manifest,
  ])
  await layout.setTag('t', idx)
  assert.equal((await resolveImage(layout, { tag: 't' }, arm64)).manifestDescriptor.digest, b.manifest.digest)
  assert.equal((await resolveImage(layout, { tag: 't' }, 'any')).manifestDescriptor.digest, a.manifest.digest)
})

test('resolveImage: several index.json entries with one tag (one per platform) are chosen among', async (t) => {
  const layout = await tempLayout(t)
  const a = await putImage(layout, { layers: 1, platform: amd64 })
  const b = await putImage(layout, { layers: 1, platform: arm64 })
  await layout.updateIndex((index) => ({
    ...index,
    manifests: [
      { ...withPlatform(a.manifest, amd64), annotations: { [Annotation.RefName]: 'x' } },
      { ...withPlatform(b.manifest, arm64), annotations: { [Annotation.RefName]: 'x' } },
    ],
  }))
  assert.equal((await resolveImage(layout, { tag: 'x' }, arm64)).manifestDescriptor.digest, b.manifest.digest)
  assert.equal((await resolveImage(layout, { tag: 'x' }, amd64)).manifestDescriptor.digest, a.manifest.digest)
})

test('resolveImage: an artifact manifest is UNSUPPORTED, a corrupt manifest blob is reported, a mediaType lie is caught', async (t) => {
  const layout = await tempLayout(t)
  const cfg = await layout.putBlob(Buffer.from('{}'))
  const artifact: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: 'application/x.test',
    config: { mediaType: MediaType.OciEmpty, digest: cfg.digest, size: cfg.size },
    layers: [],
  }
  await layout.setTag('art', await layout.putManifest(Buffer.from(JSON.stringify(artifact)), MediaType.OciManifest))
  await assert.rejects(resolveImage(layout, { tag: 'art' }), isCode('UNSUPPORTED', /not a container image/))

  const img = await putImage(layout, { layers: 1 })
  // index.json says it is an index; the document is a manifest.
  await layout.setTag('lie', { ...img.manifest, mediaType: MediaType.OciIndex })
  await assert.rejects(resolveImage(layout, { tag: 'lie' }), (e: unknown) => isLadingError(e) && /mediaType|manifests/.test((e as Error).message))

  await layout.setTag('good', img.manifest)
  const { writeFile } = await import('node:fs/promises')
  await writeFile(layout.blobPath(img.config.digest), '{"corrupted": true}')
  await assert.rejects(resolveImage(layout, { tag: 'good' }), isCode('SIZE_MISMATCH', new RegExp(img.config.digest)))
})

test('writeImage stores config and manifest, points the tag at the manifest, and refuses missing layers', async (t) => {
  const layout = await tempLayout(t)
  const base = await resolveImage(layout, { tag: 't' }).catch(() => undefined)
  assert.equal(base, undefined)
  const img = await putImage(layout, { layers: 1 })
  await layout.setTag('t', img.manifest)
  const r = await resolveImage(layout, { tag: 't' })
  const config = { ...r.config, config: { ...r.config.config, Env: ['NEW=1'] } }
  const desc = await writeImage(layout, { config, manifest: r.manifest, tag: 't2', annotations: { 'org.example': 'yes' } })
  const r2 = await resolveImage(layout, { tag: 't2' })
  assert.equal(r2.manifestDescriptor.digest, desc.digest)
  assert.deepEqual(r2.config.config?.Env, ['NEW=1'])
  assert.equal(r2.manifest.config.digest, digestOf(r2.configBytes))
  assert.equal(r2.manifest.mediaType, MediaType.OciManifest)
  assert.equal((await layout.resolveTag('t2')).annotations?.['org.example'], 'yes')
  assert.equal((await resolveImage(layout, { tag: 't' })).manifestDescriptor.digest, img.manifest.digest)
  const missing = { ...r.manifest, layers: [{ mediaType: MediaType.OciLayerGzip, digest: digestOf('nope'), size: 4 }] }
  await assert.rejects(writeImage(layout, { config, manifest: missing, tag: 't3' }), isCode('BLOB_UNKNOWN'))
  assert.deepEqual(
    (await layout.listTags()).map((t) => t.tag),
    ['t', 't2'],
  )
})

test('crane/buildah-style index.json: full references as ref.name, untagged entries, containerd names', async (t) => {
  const layout = await tempLayout(t)
  const a = await putImage(layout, { layers: 1, platform: amd64 })
  const b = await putImage(layout, { layers: 1, platform: arm64 })
  const idx = await putIndex(layout, [withPlatform(a.manifest, amd64), withPlatform(b.manifest, arm64)])
  await layout.updateIndex((index) => ({
    ...index,
    manifests: [
      // crane append/pull with --format oci writes untagged entries.
      idx,
      {
        ...a.manifest,
        annotations: { [Annotation.RefName]: 'docker.io/library/busybox:1.36', [Annotation.ContainerdImageName]: 'docker.io/library/busybox:1.36' },
      },
    ],
  }))
  assert.deepEqual(
    (await layout.listTags()).map((t) => t.tag),
    ['docker.io/library/busybox:1.36'],
  )
  assert.equal((await resolveImage(layout, { tag: 'docker.io/library/busybox:1.36' })).manifestDescriptor.digest, a.manifest.digest)
  assert.equal((await resolveImage(layout, { digest: idx.digest }, arm64)).manifestDescriptor.digest, b.manifest.digest)
  await layout.setTag('example.com/app/x:v1.0.0-vendor.0', idx)
  assert.equal((await resolveImage(layout, { tag: 'example.com/app/x:v1.0.0-vendor.0' }, amd64)).manifestDescriptor.digest, a.manifest.digest)
})
