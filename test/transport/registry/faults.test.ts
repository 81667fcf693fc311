/**
 * Transient failures and hostile bytes, injected by test/helpers/fault-proxy.ts in front of a
 * real docker-registry: resets, 500s and 429s are retried and the transfer completes; a flipped
 * byte is a DIGEST_MISMATCH naming the blob and nothing is stored; a body cut midway resumes
 * with a Range request from the bytes already received.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import { RegistryClient } from '../../../src/transport/registry/client.js'
import { MONOLITHIC_MAX } from '../../../src/transport/registry/blob-upload.js'
import { copyImage, type CopyEvent } from '../../../src/copy/copy.js'
import { registryDestination } from '../../../src/transport/registry/destination.js'
import { registrySource } from '../../../src/transport/registry/source.js'
import { digestOf } from '../../../src/digest/index.js'
import { isLadingError } from '../../../src/errors.js'
import { registryAvailable } from '../../helpers/registry.js'
import { proxiedRegistry } from '../../helpers/proxied-registry.js'
import { buffer } from 'node:stream/consumers'
import { makeImage, stream } from '../../fixtures/image.js'

const skip = registryAvailable() ? false : process.env.CI === 'true' ? false : 'docker-registry not installed'
const fast = { attempts: 4, baseDelayMs: 5, maxDelayMs: 50 }

describe('registry faults (fault proxy in front of docker-registry)', { skip }, () => {
  const env = proxiedRegistry({ before, after }, fast)

  test('connection resets, 500s and 429 with Retry-After are retried; push and pull complete', async () => {
    const img = makeImage({ layers: [5000, 40_000] })
    const ref = { transport: 'docker' as const, registry: env.proxy.host, repository: 'faults/retry', tag: 'v1' }
    env.proxy.addFault({ method: 'HEAD', path: /\/faults\/retry\/blobs\//, fault: { kind: 'reset' } })
    env.proxy.addFault({ method: 'POST', path: /\/faults\/retry\/blobs\/uploads\/$/, fault: { kind: 'reset' } })
    env.proxy.addFault({ method: 'PUT', path: /\/faults\/retry\/blobs\/uploads\//, fault: { kind: 'status', status: 500 } })
    env.proxy.addFault({ method: 'PUT', path: /\/faults\/retry\/manifests\/v1$/, fault: { kind: 'status', status: 503 } })
    env.proxy.addFault({ method: 'GET', path: /\/faults\/retry\/manifests\/v1$/, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } })
    env.proxy.addFault({ method: 'GET', path: /\/faults\/retry\/blobs\/sha256:/, fault: { kind: 'reset' }, times: 2 })
    env.proxy.addFault({ method: 'GET', path: /\/faults\/retry\/blobs\/sha256:/, fault: { kind: 'status', status: 502 } })
    const dest = await registryDestination(ref, { tlsVerify: false, retry: fast })
    try {
      for (const b of [img.config, ...img.layers]) {
        if (!(await dest.hasBlob(b.desc))) await dest.putBlob(stream(b.bytes), b.desc)
      }
      await dest.putManifest(img.manifest, 'v1')
    } finally {
      await dest.close()
    }
    const src = await registrySource(ref, { tlsVerify: false, retry: fast })
    try {
      assert.equal((await src.getManifest()).digest, img.manifest.digest)
      for (const b of [img.config, ...img.layers]) assert.deepEqual(await buffer(await src.getBlob(b.desc)), b.bytes)
    } finally {
      await src.close()
    }
    assert.equal(env.proxy.pending(), 0, 'every injected fault fired')
    assert.deepEqual(await buffer(await env.client.getBlob('faults/retry', img.layers[1]!.desc)), img.layers[1]!.bytes)
  })

  test('429 Retry-After is honoured (up to the cap)', async () => {
    const img = makeImage({ layers: [10] })
    await env.client.putBlob('faults/after', stream(img.config.bytes), img.config.desc)
    const c = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5000 } })
    try {
      env.proxy.addFault({ method: 'GET', path: /\/faults\/after\/blobs\//, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } })
      const t0 = Date.now()
      assert.deepEqual(await buffer(await c.getBlob('faults/after', img.config.desc)), img.config.bytes)
      assert.ok(Date.now() - t0 >= 900, `waited ${Date.now() - t0} ms`)
    } finally {
      await c.close()
    }
  })

  test('a fault on every attempt fails with one NETWORK line after the retry budget', async () => {
    const img = makeImage({ layers: [10] })
    await env.client.putBlob('faults/budget', stream(img.config.bytes), img.config.desc)
    const c = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } })
    try {
      env.proxy.addFault({ method: 'GET', path: /\/faults\/budget\/blobs\//, fault: { kind: 'status', status: 500 }, times: 3 })
      await assert.rejects(
        async () => buffer(await c.getBlob('faults/budget', img.config.desc)),
        (e: unknown) => {
          assert.ok(isLadingError(e, 'NETWORK'), String(e))
          assert.match((e as Error).message, /GET blob sha256:[0-9a-f]{64}: HTTP 500|500 UNKNOWN/)
          return true
        },
      )
      assert.equal(env.proxy.pending(), 0)
    } finally {
      await c.close()
    }
  })

  test('security: a flipped byte in a served blob is DIGEST_MISMATCH naming the blob, and the destination stores nothing', async () => {
    const img = makeImage({ layers: [30_000] })
    const layer = img.layers[0]!
    await env.client.putBlob('faults/flip-src', stream(layer.bytes), layer.desc)
    const src = await registrySource({ transport: 'docker', registry: env.proxy.host, repository: 'faults/flip-src' }, { tlsVerify: false, retry: fast })
    const dest = await registryDestination({ transport: 'docker', registry: env.reg.host, repository: 'faults/flip-dst' }, { tlsVerify: false, retry: fast })
    try {
      env.proxy.addFault({ method: 'GET', path: /\/faults\/flip-src\/blobs\//, fault: { kind: 'flip-byte', offset: 12_345 } })
      await assert.rejects(dest.putBlob(await src.getBlob(layer.desc), layer.desc), (e: unknown) => {
        assert.ok(isLadingError(e, 'DIGEST_MISMATCH'), String(e))
        assert.ok((e as Error).message.includes(layer.desc.digest), (e as Error).message)
        assert.doesNotMatch((e as Error).message, /\n/)
        return true
      })
      assert.equal(await dest.hasBlob(layer.desc), false)
      const flipped = Buffer.from(layer.bytes)
      flipped[12_345] = flipped[12_345]! ^ 0xff
      assert.equal(
        await env.client.blobSize('faults/flip-dst', digestOf(flipped)),
        undefined,
        'the corrupted bytes were not committed under their own digest either',
      )
    } finally {
      await src.close()
      await dest.close()
    }
  })

  test('security: an upload whose stream does not match the expected digest or size is never committed', async () => {
    const img = makeImage({ layers: [20_000] })
    const layer = img.layers[0]!
    const wrong = digestOf(Buffer.from('something else'))
    await assert.rejects(env.client.putBlob('faults/upload', stream(layer.bytes), { digest: wrong, size: layer.desc.size }), (e: unknown) =>
      isLadingError(e, 'DIGEST_MISMATCH'),
    )
    await assert.rejects(env.client.putBlob('faults/upload', stream(layer.bytes), { digest: layer.desc.digest, size: layer.desc.size - 1 }), (e: unknown) =>
      isLadingError(e, 'SIZE_MISMATCH'),
    )
    const chunked = new RegistryClient({ registry: env.reg.host, tlsVerify: false, retry: fast, chunkSize: 4096 })
    try {
      await assert.rejects(chunked.putBlob('faults/upload', stream(layer.bytes), { digest: wrong }), (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH'))
    } finally {
      await chunked.close()
    }
    assert.equal(await env.client.blobSize('faults/upload', layer.desc.digest), undefined)
    assert.equal(await env.client.blobSize('faults/upload', wrong), undefined)
  })

  test('a body cut midway resumes with a Range request from the bytes received', async () => {
    const img = makeImage({ layers: [100_000] })
    const layer = img.layers[0]!
    await env.client.putBlob('faults/cut', stream(layer.bytes), layer.desc)
    const c = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast })
    try {
      const before = env.proxy.requests.length
      env.proxy.addFault({ method: 'GET', path: /\/faults\/cut\/blobs\//, fault: { kind: 'cut', after: 30_000 } })
      assert.deepEqual(await buffer(await c.getBlob('faults/cut', layer.desc)), layer.bytes)
      const gets = env.proxy.requests.slice(before).filter((q) => q.method === 'GET' && q.path.includes('/faults/cut/blobs/'))
      assert.equal(gets.length, 2)
      assert.equal(gets[0]!.range, undefined)
      assert.equal(gets[1]!.range, 'bytes=30000-')
    } finally {
      await c.close()
    }
  })

  test('a resume answered with the whole body (Range ignored) skips the bytes already received', async () => {
    const img = makeImage({ layers: [80_000] })
    const layer = img.layers[0]!
    await env.client.putBlob('faults/norange', stream(layer.bytes), layer.desc)
    const c = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast })
    try {
      env.proxy.addFault({ method: 'GET', path: /\/faults\/norange\/blobs\//, fault: { kind: 'cut', after: 20_000 } })
      env.proxy.addFault({ method: 'GET', path: /\/faults\/norange\/blobs\//, fault: { kind: 'ignore-range' } })
      assert.deepEqual(await buffer(await c.getBlob('faults/norange', layer.desc)), layer.bytes)
      assert.equal(env.proxy.pending(), 0)
    } finally {
      await c.close()
    }
  })

  test('streamed upload: a PATCH reset, a 500 and a lost response each start the upload over from a fresh stream; the blob completes', async () => {
    const data = randomBytes(MONOLITHIC_MAX + 300_000)
    const desc = { digest: digestOf(data), size: data.length }
    const c = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast })
    try {
      const before = env.proxy.requests.length
      env.proxy.addFault({ method: 'PATCH', path: /\/faults\/stream\/blobs\/uploads\//, fault: { kind: 'reset' } })
      env.proxy.addFault({ method: 'PATCH', path: /\/faults\/stream\/blobs\/uploads\//, fault: { kind: 'status', status: 500 } })
      env.proxy.addFault({ method: 'PATCH', path: /\/faults\/stream\/blobs\/uploads\//, fault: { kind: 'drop-response' } })
      let reopened = 0
      const r = await c.putBlob('faults/stream', stream(data, 64 * 1024), desc, {
        reopen: async () => {
          reopened++
          return stream(data, 64 * 1024)
        },
      })
      assert.deepEqual(r, desc)
      assert.equal(reopened, 3)
      assert.equal(env.proxy.pending(), 0)
      const seen = env.proxy.requests.slice(before)
      assert.equal(seen.filter((q) => q.method === 'PATCH').length, 4)
      assert.equal(seen.filter((q) => q.method === 'POST').length, 4, 'each attempt is a new session')
      assert.equal(seen.filter((q) => q.method === 'PUT').length, 1, 'one closing PUT, after the attempt that went through')
      assert.equal(seen.filter((q) => q.method === 'DELETE').length, 3, 'each failed session is cancelled')
      assert.deepEqual(await buffer(await env.client.getBlob('faults/stream', desc)), data)
    } finally {
      await c.close()
    }
  })

  test('streamed upload without a way to reopen the stream: a PATCH reset fails in one NETWORK line and commits nothing', async () => {
    const data = randomBytes(MONOLITHIC_MAX + 1000)
    const desc = { digest: digestOf(data), size: data.length }
    const c = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast })
    try {
      env.proxy.addFault({ method: 'PATCH', path: /\/faults\/noreopen\/blobs\/uploads\//, fault: { kind: 'reset' } })
      await assert.rejects(c.putBlob('faults/noreopen', stream(data, 64 * 1024), desc), (e: unknown) => {
        assert.ok(isLadingError(e, 'NETWORK'), String(e))
        assert.match((e as Error).message, /faults\/noreopen: PATCH blob: /)
        assert.doesNotMatch((e as Error).message, /\n/)
        return true
      })
      assert.equal(env.proxy.pending(), 0)
      assert.equal(await env.client.blobSize('faults/noreopen', desc.digest), undefined)
    } finally {
      await c.close()
    }
  })

  test('copy: a streamed layer upload that is reset starts over from the source (with a warning) and the copy completes', async () => {
    const img = makeImage({ layers: [MONOLITHIC_MAX + 1000] })
    for (const b of [img.config, ...img.layers]) await env.client.putBlob('faults/copysrc', stream(b.bytes), b.desc)
    await env.client.putManifest('faults/copysrc', 'v1', img.manifest)
    const src = await registrySource(
      { transport: 'docker', registry: env.reg.host, repository: 'faults/copysrc', tag: 'v1' },
      { tlsVerify: false, retry: fast },
    )
    const dest = await registryDestination(
      { transport: 'docker', registry: env.proxy.host, repository: 'faults/copydst', tag: 'v1' },
      { tlsVerify: false, retry: fast },
    )
    const events: CopyEvent[] = []
    try {
      env.proxy.addFault({ method: 'PATCH', path: /\/faults\/copydst\/blobs\/uploads\//, fault: { kind: 'reset' } })
      const r = await copyImage(src, dest, { onProgress: (e) => events.push(e) })
      assert.equal(r.digest, img.manifest.digest)
      assert.equal(env.proxy.pending(), 0)
    } finally {
      await src.close()
      await dest.close()
    }
    const layer = img.layers[0]!
    assert.ok(
      events.some((e) => e.type === 'warning' && e.message.includes(layer.desc.digest)),
      'the restart is reported',
    )
    assert.deepEqual(await buffer(await env.client.getBlob('faults/copydst', layer.desc)), layer.bytes)
  })

  test('security: a streamed upload whose bytes do not match (digest, or fewer bytes than declared) sends no closing PUT and commits nothing', async () => {
    const data = randomBytes(MONOLITHIC_MAX + 2000)
    const wrong = digestOf(Buffer.from('not these bytes'))
    const c = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast })
    try {
      const before = env.proxy.requests.length
      // Reopening cannot help a mismatch: it must not even be tried.
      const reopen = async (): Promise<Readable> => {
        throw new Error('reopen must not be called for a mismatch')
      }
      await assert.rejects(c.putBlob('faults/smismatch', stream(data, 64 * 1024), { digest: wrong, size: data.length }, { reopen }), (e: unknown) =>
        isLadingError(e, 'DIGEST_MISMATCH'),
      )
      await assert.rejects(
        c.putBlob('faults/smismatch', stream(data.subarray(0, data.length - 1), 64 * 1024), { digest: digestOf(data), size: data.length }, { reopen }),
        (e: unknown) => isLadingError(e, 'SIZE_MISMATCH'),
      )
      await assert.rejects(c.putBlob('faults/smismatch', stream(data, 64 * 1024), { digest: wrong }, { reopen }), (e: unknown) =>
        isLadingError(e, 'DIGEST_MISMATCH'),
      )
      const seen = env.proxy.requests.slice(before)
      assert.ok(seen.filter((q) => q.method === 'PATCH').length >= 2, 'the bytes were streamed')
      assert.equal(seen.filter((q) => q.method === 'PUT').length, 0, 'no closing PUT for bytes that failed verification')
      assert.equal(await env.client.blobSize('faults/smismatch', digestOf(data)), undefined)
      assert.equal(await env.client.blobSize('faults/smismatch', wrong), undefined)
    } finally {
      await c.close()
    }
  })

  test('chunked upload: a PATCH reset before it reached the registry is retried and the blob completes', async () => {
    const img = makeImage({ layers: [50_000] })
    const layer = img.layers[0]!
    const c = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast, chunkSize: 10_000 })
    try {
      env.proxy.addFault({ method: 'PATCH', path: /\/faults\/patch\/blobs\/uploads\//, fault: { kind: 'reset' } })
      env.proxy.addFault({ method: 'PATCH', path: /\/faults\/patch\/blobs\/uploads\//, fault: { kind: 'status', status: 500 } })
      const r = await c.putBlob('faults/patch', stream(layer.bytes), layer.desc)
      assert.equal(r.digest, layer.desc.digest)
      assert.equal(env.proxy.pending(), 0)
      assert.deepEqual(await buffer(await env.client.getBlob('faults/patch', layer.desc)), layer.bytes)
    } finally {
      await c.close()
    }
  })

  test('chunked upload: a PATCH whose response is lost fails in one line (distribution voids the session) and commits nothing', async () => {
    const img = makeImage({ layers: [50_000] })
    const layer = img.layers[0]!
    const c = new RegistryClient({ registry: env.proxy.host, tlsVerify: false, retry: fast, chunkSize: 10_000 })
    try {
      env.proxy.addFault({ method: 'PATCH', path: /\/faults\/lost\/blobs\/uploads\//, fault: { kind: 'drop-response' } })
      await assert.rejects(c.putBlob('faults/lost', stream(layer.bytes), layer.desc), (e: unknown) => {
        assert.ok(isLadingError(e), String(e))
        assert.match((e as Error).message, /PATCH blob chunk 0-9999: .*BLOB_UPLOAD_INVALID|416/)
        assert.doesNotMatch((e as Error).message, /\n/)
        return true
      })
      assert.equal(await env.client.blobSize('faults/lost', layer.desc.digest), undefined)
    } finally {
      await c.close()
    }
  })
})
