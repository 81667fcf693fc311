/**
 * Issue 10 item 2: a registry that stops answering mid-request must not hang `copy` or
 * `inspect`. test/helpers/fault-proxy.ts in front of a real docker-registry answers GET /v2/
 * and then goes silent on the kept-alive connection, stops in the middle of the headers,
 * trickles the headers a byte at a time, or stops in the middle of a manifest's or a blob's
 * body. Each ends, within the test's timeout, in a successful retry (a stall that happens once)
 * or in one NETWORK line naming the registry, the request and what stalled. The CLI tests run
 * `lading` with LADING_REGISTRY_TIMEOUT set small and kill it if it hangs.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import path from 'node:path'
import { RegistryClient } from '../../../src/transport/registry/client.js'
import { registryMissing, startRegistry, type RunningRegistry } from '../../helpers/registry.js'
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js'
import { lading, ladingAsync } from '../../helpers/cli.js'
import { oneLine } from '../../helpers/one-line-error.js'
import { buffer } from 'node:stream/consumers'
import { makeImage, stream, type TestImage } from '../../fixtures/image.js'
import { tempDir } from '../../fixtures/temp.js'

const skip = registryMissing()
const retry = { attempts: 3, baseDelayMs: 5, maxDelayMs: 50 }
const timeoutMs = 400
/** A hang fails the test here (today's 60 s default and 5 attempts would take minutes). */
const bounded = { timeout: 30_000 }

describe('a registry that stops answering mid-request', { skip }, () => {
  let reg: RunningRegistry
  let proxy: FaultProxy
  let img: TestImage
  const tmp = tempDir({ after }, { prefix: 'lading-stalls-' })
  const client = (): RegistryClient => new RegistryClient({ registry: proxy.host, tlsVerify: false, retry, timeoutMs })
  before(async () => {
    reg = await startRegistry()
    proxy = await startFaultProxy(reg.url)
    img = makeImage({ layers: [3000, 200_000] })
    const direct = new RegistryClient({ registry: reg.host, tlsVerify: false })
    try {
      for (const b of [img.config, ...img.layers]) await direct.putBlob('stall/app', stream(b.bytes), b.desc)
      await direct.putManifest('stall/app', 'v1', img.manifest)
    } finally {
      await direct.close()
    }
  })
  after(async () => {
    await proxy?.stop()
    await reg?.stop()
  })

  test('stall-silence-after-v2: silence on the kept-alive connection after GET /v2/ is retried, then one error', bounded, async () => {
    proxy.addFault({ method: 'GET', path: /\/stall\/app\/manifests\/v1$/, fault: { kind: 'silence' }, times: retry.attempts })
    const from = proxy.requests.length
    const c = client()
    try {
      await assert.rejects(c.getManifest('stall/app', 'v1'), (e) =>
        oneLine(
          e,
          'NETWORK',
          /^docker:\/\/127\.0\.0\.1:\d+\/stall\/app: GET manifest v1: ETIMEDOUT: timed out waiting for the response headers \(idle for 0\.4 s\) \(3 attempts\) \(the registry stopped answering; LADING_REGISTRY_TIMEOUT=SECONDS/,
        ),
      )
    } finally {
      await c.close()
    }
    const seen = proxy.requests.slice(from)
    assert.equal(seen[0]!.path, '/v2/')
    assert.equal(seen[1]!.fault, 'silence')
    assert.equal(seen[1]!.connection, seen[0]!.connection, 'the first stalled request reused the connection of GET /v2/')
    assert.equal(seen.filter((r) => r.fault === 'silence').length, retry.attempts)
    assert.equal(proxy.pending(), 0)
  })

  test('stall-mid-headers: a response stopped inside its headers is retried; stopped every time, one error', bounded, async () => {
    const c = client()
    try {
      proxy.addFault({ method: 'GET', path: /\/stall\/app\/manifests\/v1$/, fault: { kind: 'stall-headers' } })
      assert.equal((await c.getManifest('stall/app', 'v1')).digest, img.manifest.digest)
      assert.equal(proxy.pending(), 0)
      proxy.addFault({ method: 'HEAD', path: /\/stall\/app\/manifests\/v1$/, fault: { kind: 'stall-headers' }, times: retry.attempts })
      await assert.rejects(c.headManifest('stall/app', 'v1'), (e) =>
        oneLine(e, 'NETWORK', /\/stall\/app: HEAD manifest v1: .*timed out waiting for the response headers \(idle for 0\.4 s\) \(3 attempts\)/),
      )
    } finally {
      await c.close()
    }
  })

  test('stall-trickled-headers: headers sent a byte at a time never hold a request longer than the timeout', bounded, async () => {
    proxy.addFault({ method: 'GET', path: /\/stall\/app\/manifests\/v1$/, fault: { kind: 'trickle-headers', everyMs: 50 }, times: retry.attempts })
    const c = client()
    try {
      await assert.rejects(c.getManifest('stall/app', 'v1'), (e) =>
        oneLine(e, 'NETWORK', /GET manifest v1: .*timed out waiting for the response headers \(not complete after 0\.8 s\)/),
      )
    } finally {
      await c.close()
    }
  })

  test('stall-mid-manifest-body: a manifest body stopped midway is fetched again; stopped every time, one error', bounded, async () => {
    const c = client()
    try {
      proxy.addFault({ method: 'GET', path: /\/stall\/app\/manifests\/v1$/, fault: { kind: 'stall-body', after: 10 } })
      assert.equal((await c.getManifest('stall/app', 'v1')).digest, img.manifest.digest)
      assert.equal(proxy.pending(), 0)
      proxy.addFault({ method: 'GET', path: /\/stall\/app\/manifests\/v1$/, fault: { kind: 'stall-body', after: 10 }, times: retry.attempts })
      await assert.rejects(c.getManifest('stall/app', 'v1'), (e) =>
        oneLine(
          e,
          'NETWORK',
          /^docker:\/\/127\.0\.0\.1:\d+\/stall\/app: GET manifest v1: reading the response failed after 10 bytes: ETIMEDOUT: timed out reading the response body \(idle for 0\.4 s\) \(3 attempts\)/,
        ),
      )
      assert.equal(proxy.pending(), 0)
    } finally {
      await c.close()
    }
  })

  test('stall-mid-blob-body: a blob body stopped midway resumes with Range; stopped every time, one error', bounded, async () => {
    const layer = img.layers[1]!
    const c = client()
    try {
      proxy.addFault({ method: 'GET', path: new RegExp(`/stall/app/blobs/${layer.desc.digest}$`), fault: { kind: 'stall-body', after: 50_000 } })
      const from = proxy.requests.length
      assert.deepEqual(await buffer(await c.getBlob('stall/app', layer.desc)), layer.bytes)
      assert.deepEqual(
        proxy.requests
          .slice(from)
          .filter((r) => r.path.includes('/blobs/'))
          .map((r) => r.range),
        [undefined, 'bytes=50000-'],
      )
      proxy.addFault({
        method: 'GET',
        path: new RegExp(`/stall/app/blobs/${layer.desc.digest}$`),
        fault: { kind: 'stall-body', after: 50_000 },
        times: retry.attempts,
      })
      // Each of the three stalls comes 50000 bytes further on: the resumes keep what arrived.
      await assert.rejects(
        async () => buffer(await c.getBlob('stall/app', layer.desc)),
        (e) =>
          oneLine(
            e,
            'NETWORK',
            /\/stall\/app: GET blob sha256:[0-9a-f]{64}: download failed after 150000 bytes: ETIMEDOUT: timed out reading the response body \(idle for 0\.4 s\)/,
          ),
      )
    } finally {
      await c.close()
    }
  })

  test('stall-cli-inspect: `lading inspect` against a silent registry ends with one line, exit 1', bounded, async () => {
    proxy.addFault({ method: 'GET', path: /\/stall\/app\/manifests\/v1$/, fault: { kind: 'silence' }, times: 5 })
    const r = await ladingAsync(['inspect', '--tls-verify=false', `docker://${proxy.host}/stall/app:v1`], {
      env: { LADING_REGISTRY_TIMEOUT: '0.3' },
      killAfterMs: 25_000,
    })
    assert.equal(r.status, 1, `lading was killed or exited ${r.status}: ${r.stderr}`)
    assert.match(
      r.stderr,
      /^lading: docker:\/\/127\.0\.0\.1:\d+\/stall\/app: GET manifest v1: ETIMEDOUT: timed out waiting for the response headers \(idle for 0\.3 s\) \(5 attempts\) .*\n$/,
    )
    assert.equal(proxy.pending(), 0)
  })

  test('stall-cli-copy: `lading copy` from a registry whose blob body stops ends with one line, exit 1', bounded, async () => {
    const layer = img.layers[1]!
    proxy.addFault({ method: 'GET', path: new RegExp(`/stall/app/blobs/${layer.desc.digest}$`), fault: { kind: 'stall-body', after: 1000 }, times: 5 })
    const dest = path.join(tmp, 'copy')
    const r = await ladingAsync(['copy', '--quiet', '--src-tls-verify=false', `docker://${proxy.host}/stall/app:v1`, `oci:${dest}:v1`], {
      env: { LADING_REGISTRY_TIMEOUT: '0.3' },
      killAfterMs: 25_000,
    })
    assert.notEqual(r.status, null, 'lading hung and was killed')
    if (r.status === 0) {
      // Seen once in a full parallel run: the copy succeeded. Allowed only as a successful
      // retry: the layout must be complete and verified (never a tag over a missing blob).
      const v = lading(['validate', '--layout', dest])
      assert.equal(v.status, 0, `copy exited 0 but the layout is invalid: ${v.stdout}${v.stderr}`)
      return
    }
    assert.equal(r.status, 1, `lading exited ${r.status}: ${r.stderr}`)
    // Five stalls (the default retry budget), each 1000 bytes further on.
    assert.match(
      r.stderr,
      /^lading: docker:\/\/127\.0\.0\.1:\d+\/stall\/app: GET blob sha256:[0-9a-f]{64}: download failed after 5000 bytes: ETIMEDOUT: timed out reading the response body \(idle for 0\.3 s\) \(the registry stopped answering; LADING_REGISTRY_TIMEOUT=SECONDS sets how long to wait\)\n$/,
    )
  })

  test('stall-timeout-setting: a malformed LADING_REGISTRY_TIMEOUT is a usage error', () => {
    const r = lading(['inspect', '--tls-verify=false', `docker://${proxy.host}/stall/app:v1`], { env: { LADING_REGISTRY_TIMEOUT: '5m' } })
    assert.equal(r.status, 2)
    assert.match(r.stderr, /^lading: LADING_REGISTRY_TIMEOUT: expected seconds, more than 0 and at most 86400, got "5m"\n$/)
  })
})
