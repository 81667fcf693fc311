/**
 * The registry client against a real docker-registry (CNCF distribution 2.8), anonymous:
 * push and pull, chunked upload, cross-repository mount, tag pagination, referrers fallback,
 * delete, and the error lines users see.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { RegistryClient } from '../../../src/transport/registry/client.js'
import { registryDestination } from '../../../src/transport/registry/destination.js'
import { registrySource } from '../../../src/transport/registry/source.js'
import { isLadingError } from '../../../src/errors.js'
import { registryAvailable } from '../../helpers/registry.js'
import { proxiedRegistry } from '../../helpers/proxied-registry.js'
import { startFaultProxy } from '../../helpers/fault-proxy.js'
import { MediaType } from '../../../src/spec/media-types.js'
import { buffer } from 'node:stream/consumers'
import { makeArtifact, makeImage, stream, type TestImage } from '../../fixtures/image.js'

const skip = registryAvailable() ? false : process.env.CI === 'true' ? false : 'docker-registry not installed'
const fast = { attempts: 4, baseDelayMs: 5, maxDelayMs: 50 }

async function pushImage(client: RegistryClient, repo: string, img: TestImage, tag = 'latest'): Promise<void> {
  for (const b of [img.config, ...img.layers]) {
    const r = await client.putBlob(repo, stream(b.bytes), { digest: b.desc.digest, size: b.desc.size })
    assert.equal(r.digest, b.desc.digest)
  }
  await client.putManifest(repo, tag, img.manifest)
}

describe('registry client (anonymous docker-registry)', { skip }, () => {
  const env = proxiedRegistry({ before, after }, fast)

  test('push then pull a small image by tag and by digest (source/destination)', async () => {
    const img = makeImage({ layers: [3000, 70_000] })
    const ref = { transport: 'docker' as const, registry: env.reg.host, repository: 'lading/small', tag: 'v1' }
    const dest = await registryDestination(ref, { tlsVerify: false, retry: fast })
    try {
      for (const b of [img.config, ...img.layers]) {
        assert.equal(await dest.hasBlob(b.desc), false)
        const d = await dest.putBlob(stream(b.bytes), b.desc)
        assert.deepEqual(d, b.desc)
        assert.equal(await dest.hasBlob(b.desc), true)
      }
      const md = await dest.putManifest(img.manifest, 'v1')
      assert.equal(md.digest, img.manifest.digest)
      await dest.commit()
    } finally {
      await dest.close()
    }
    const src = await registrySource(ref, { tlsVerify: false })
    try {
      const byTag = await src.getManifest()
      assert.equal(byTag.digest, img.manifest.digest)
      assert.equal(byTag.mediaType, MediaType.OciManifest)
      assert.deepEqual(byTag.bytes, img.manifest.bytes)
      const byDigest = await src.getManifest(img.manifest.digest)
      assert.deepEqual(byDigest.bytes, img.manifest.bytes)
      for (const b of [img.config, ...img.layers]) assert.deepEqual(await buffer(await src.getBlob(b.desc)), b.bytes)
    } finally {
      await src.close()
    }
  })

  test('a Docker v2s2 manifest keeps its media type through content negotiation', async () => {
    const img = makeImage({ layers: [500] })
    const doc = {
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: { ...img.config.desc, mediaType: MediaType.DockerConfig },
      layers: img.layers.map((l) => ({ ...l.desc, mediaType: MediaType.DockerLayerGzip })),
    }
    const bytes = Buffer.from(JSON.stringify(doc, null, 3))
    const { digestOf } = await import('../../../src/digest/index.js')
    const raw = { bytes, mediaType: MediaType.DockerManifest, digest: digestOf(bytes) }
    for (const b of [img.config, ...img.layers]) await env.client.putBlob('lading/docker', stream(b.bytes), b.desc)
    await env.client.putManifest('lading/docker', 'v2s2', raw)
    const got = await env.client.getManifest('lading/docker', 'v2s2')
    assert.equal(got.mediaType, MediaType.DockerManifest)
    assert.equal(got.digest, raw.digest)
    assert.deepEqual(got.bytes, bytes)
  })

  test('chunked upload: small chunks are PATCHed with Content-Range and the blob verifies', async () => {
    const chunked = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast, chunkSize: 16 * 1024 })
    try {
      const img = makeImage({ layers: [100_000] })
      const layer = img.layers[0]!
      const before = env.proxy.requests.length
      const r = await chunked.putBlob('lading/chunked', stream(layer.bytes, 5000), layer.desc)
      assert.equal(r.digest, layer.desc.digest)
      const reqs = env.proxy.requests.slice(before)
      const patches = reqs.filter((q) => q.method === 'PATCH')
      assert.equal(patches.length, 6, `expected 6 PATCHes of 16 KiB for 100000 bytes, saw ${patches.length}`)
      const put = reqs.filter((q) => q.method === 'PUT')
      assert.equal(put.length, 1)
      assert.match(put[0]!.path, /digest=sha256%3A/)
      assert.deepEqual(await buffer(await env.client.getBlob('lading/chunked', layer.desc)), layer.bytes)
    } finally {
      await chunked.close()
    }
  })

  test('cross-repository mount: 201 when the blob exists in the source repository, false otherwise', async () => {
    const img = makeImage({ layers: [2000] })
    const layer = img.layers[0]!
    await env.client.putBlob('lading/mount-src', stream(layer.bytes), layer.desc)
    assert.equal(await env.client.blobSize('lading/mount-dst', layer.desc.digest), undefined)
    assert.equal(await env.client.mountBlob('lading/mount-dst', layer.desc.digest, 'lading/mount-src'), true)
    assert.equal(await env.client.blobSize('lading/mount-dst', layer.desc.digest), layer.desc.size)
    const other = makeImage({ layers: [100] }).layers[0]!
    assert.equal(await env.client.mountBlob('lading/mount-dst', other.desc.digest, 'lading/mount-src'), false)
    assert.equal(await env.client.blobSize('lading/mount-dst', other.desc.digest), undefined)
  })

  test('tag pagination against docker-registry 2.8, which ignores n: every tag once, no extra pages', async () => {
    const img = makeImage({ layers: [10] })
    await pushImage(env.client, 'lading/tags', img, 't1')
    for (const t of ['t2', 't3', 't4', 't5']) await env.client.putManifest('lading/tags', t, img.manifest)
    const paging = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast })
    try {
      const before = env.proxy.requests.length
      const tags = await paging.listTags('lading/tags', { pageSize: 2 })
      assert.deepEqual([...tags].sort(), ['t1', 't2', 't3', 't4', 't5'])
      const lists = env.proxy.requests.slice(before).filter((q) => q.path.includes('/tags/list'))
      assert.equal(lists.length, 1)
      assert.match(lists[0]!.path, /[?&]n=2/)
    } finally {
      await paging.close()
    }
    assert.deepEqual([...(await env.client.listTags('lading/tags'))].sort(), ['t1', 't2', 't3', 't4', 't5'])
  })

  test('referrers: without the API, pushing (and deleting) a manifest with subject maintains the sha256-<hex> tag, and listReferrers falls back to it', async () => {
    const img = makeImage({ layers: [300] })
    await pushImage(env.client, 'lading/refs', img, 'base')
    const subject = { mediaType: img.manifest.mediaType, digest: img.manifest.digest, size: img.manifest.bytes.length }
    assert.deepEqual(await env.client.listReferrers('lading/refs', subject.digest), [])
    const art = makeArtifact(subject)
    await env.client.putBlob('lading/refs', stream(art.config.bytes), art.config.desc)
    await env.client.putBlob('lading/refs', stream(art.layer.bytes), art.layer.desc)
    await env.client.putManifest('lading/refs', art.manifest.digest, art.manifest)
    // pushing it twice does not duplicate the entry
    await env.client.putManifest('lading/refs', art.manifest.digest, art.manifest)
    const refs = await env.client.listReferrers('lading/refs', subject.digest)
    assert.equal(refs.length, 1)
    assert.equal(refs[0]!.digest, art.manifest.digest)
    assert.equal(refs[0]!.artifactType, 'application/vnd.lading.test.sbom')
    assert.deepEqual(refs[0]!.annotations, { 'org.example.kind': 'sbom' })
    const tags = await env.client.listTags('lading/refs')
    assert.ok(tags.includes(`sha256-${subject.digest.slice(7)}`), `tags: ${tags.join(',')}`)
    const src = await registrySource({ transport: 'docker', registry: env.reg.host, repository: 'lading/refs' }, { tlsVerify: false })
    try {
      assert.equal((await src.listReferrers(subject.digest)).length, 1)
    } finally {
      await src.close()
    }
    // deleting the artifact takes it out of the fallback index (§Deleting Manifests)
    await env.client.deleteManifest('lading/refs', art.manifest.digest)
    assert.deepEqual(await env.client.listReferrers('lading/refs', subject.digest), [])
    assert.equal((await env.client.getManifest('lading/refs', 'base')).digest, img.manifest.digest, 'the subject is untouched')
  })

  test('delete: a manifest deleted by digest is gone, and the error says MANIFEST_UNKNOWN', async () => {
    const img = makeImage({ layers: [50] })
    await pushImage(env.client, 'lading/del', img, 'gone')
    const head = await env.client.headManifest('lading/del', 'gone')
    assert.equal(head?.digest, img.manifest.digest)
    await env.client.deleteManifest('lading/del', img.manifest.digest)
    assert.equal(await env.client.headManifest('lading/del', 'gone'), undefined)
    await assert.rejects(env.client.getManifest('lading/del', img.manifest.digest), (e: unknown) => {
      assert.ok(isLadingError(e, 'MANIFEST_UNKNOWN'), String(e))
      assert.match((e as Error).message, /^docker:\/\/127\.0\.0\.1:\d+\/lading\/del: GET manifest sha256:[0-9a-f]{64}: 404 MANIFEST_UNKNOWN/)
      assert.doesNotMatch((e as Error).message, /\n/)
      return true
    })
  })

  test('unknown repository: NAME_UNKNOWN in one line', async () => {
    await assert.rejects(env.client.listTags('lading/nope'), (e: unknown) => {
      assert.ok(isLadingError(e, 'NAME_UNKNOWN'), String(e))
      assert.doesNotMatch((e as Error).message, /\n/)
      return true
    })
  })

  test('security: a manifest whose bytes do not match the requested digest is refused (DIGEST_MISMATCH)', async () => {
    const img = makeImage({ layers: [20] })
    await pushImage(env.client, 'lading/tamper', img, 'x')
    const tampering = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast })
    try {
      env.proxy.addFault({ method: 'GET', path: /\/lading\/tamper\/manifests\//, fault: { kind: 'flip-byte', offset: 10 } })
      await assert.rejects(tampering.getManifest('lading/tamper', img.manifest.digest), (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH'))
      env.proxy.addFault({ method: 'GET', path: /\/lading\/tamper\/manifests\/x$/, fault: { kind: 'flip-byte', offset: 10 } })
      // by tag: checked against Docker-Content-Digest
      await assert.rejects(tampering.getManifest('lading/tamper', 'x'), (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH'))
    } finally {
      await tampering.close()
    }
  })
  test('a blob redirected to another origin is followed and verified', async () => {
    const layer = makeImage({ layers: [4000] }).layers[0]!
    await env.client.putBlob('lading/redirect', stream(layer.bytes), layer.desc)
    const store = await startFaultProxy(env.reg.url)
    const c = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast })
    try {
      env.proxy.addFault({
        method: 'GET',
        path: /\/lading\/redirect\/blobs\/sha256:/,
        fault: { kind: 'redirect', location: `${store.url}/v2/lading/redirect/blobs/${layer.desc.digest}` },
      })
      assert.deepEqual(await buffer(await c.getBlob('lading/redirect', layer.desc)), layer.bytes)
      assert.equal(store.requests.length, 1)
    } finally {
      await c.close()
      await store.stop()
    }
  })
})
