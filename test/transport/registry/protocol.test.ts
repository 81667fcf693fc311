/**
 * Protocol features docker-registry 2.8 does not implement, checked against a small server in
 * the test that follows distribution-spec v1.1 for them: tag pagination with `n`, `last` and
 * `Link` (§Listing Tags), the referrers API with Link pages (§Listing Referrers), and
 * OCI-Chunk-Min-Length (§Pushing a blob in chunks). Plus hostile answers: a Link loop, an
 * oversized manifest, a Content-Range that does not start where we asked.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { listenOnLoopback, type Listening } from '../../helpers/loopback.js'
import { after, before, describe, test } from 'node:test'
import { RegistryClient } from '../../../src/transport/registry/client.js'
import { MONOLITHIC_MAX } from '../../../src/transport/registry/blob-upload.js'
import { digestOf, type Digest } from '../../../src/digest/index.js'
import { isLadingError } from '../../../src/errors.js'
import { MediaType } from '../../../src/spec/media-types.js'
import { randomBytes } from 'node:crypto'
import { buffer } from 'node:stream/consumers'
import { stream } from '../../fixtures/image.js'

interface Seen {
  method: string
  url: string
  range?: string
  contentRange?: string
  contentLength?: string
  chunked?: boolean
  length: number
}

describe('distribution-spec features against a conforming test server', () => {
  const TAGS = ['alpha', 'beta', 'delta', 'epsilon', 'gamma']
  const subject = digestOf('subject') as Digest
  const referrers = [1, 2, 3].map((i) => {
    const b = Buffer.from(`{"n":${i}}`)
    return { mediaType: MediaType.OciManifest, digest: digestOf(b), size: b.length, artifactType: i === 2 ? 'application/x-sig' : 'application/x-sbom' }
  })
  const blobBytes = randomBytes(50_000)
  const blobDigest = digestOf(blobBytes)
  const stallBytes = randomBytes(20_000)
  const stallDigest = digestOf(stallBytes)
  let mode: 'link' | 'last-only' | 'loop' = 'link'
  let uploaded: Buffer[] = []
  let seen: Seen[] = []
  let server: http.Server
  let host: string
  let listening: Listening

  before(async () => {
    server = http.createServer((req, res) => {
      // An upload the registry refuses: it drops the connection on the PATCH without reading it
      // (the client sees a broken pipe), and says why when asked for the session's status.
      if (req.url?.startsWith('/v2/refused/blobs/uploads/r1')) {
        seen.push({ method: req.method!, url: req.url, length: 0 })
        if (req.method === 'PATCH') {
          req.socket.destroy()
          return
        }
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="x"' })
        res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }))
        return
      }
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        const url = new URL(req.url ?? '/', 'http://x')
        seen.push({
          method: req.method!,
          url: req.url!,
          length: body.length,
          ...(req.headers.range ? { range: req.headers.range } : {}),
          ...(req.headers['content-range'] ? { contentRange: req.headers['content-range'] as string } : {}),
          ...(req.headers['content-length'] !== undefined ? { contentLength: req.headers['content-length'] } : {}),
          ...(req.headers['transfer-encoding'] === 'chunked' ? { chunked: true } : {}),
        })
        const json = (status: number, v: unknown, headers: Record<string, string> = {}): void => {
          res.writeHead(status, { 'content-type': 'application/json', ...headers })
          res.end(JSON.stringify(v))
        }
        if (url.pathname === '/v2/') return json(200, {})
        if (url.pathname === '/v2/p/tags/list') {
          const n = url.searchParams.has('n') ? Number(url.searchParams.get('n')) : TAGS.length
          const last = url.searchParams.get('last')
          const from = last ? TAGS.findIndex((t) => t > last) : 0
          const page = from < 0 ? [] : TAGS.slice(from, from + n)
          const more = from >= 0 && from + n < TAGS.length
          const headers: Record<string, string> = {}
          if (mode === 'link' && more) headers.link = `</v2/p/tags/list?n=${n}&last=${page[page.length - 1]}>; rel="next"`
          if (mode === 'loop') headers.link = `<${req.url}>; rel="next"`
          return json(200, { name: 'p', tags: page }, headers)
        }
        if (url.pathname === `/v2/p/referrers/${subject}`) {
          const i = Number(url.searchParams.get('page') ?? 0)
          const headers: Record<string, string> = { 'content-type': MediaType.OciIndex }
          if (i + 1 < referrers.length) headers.link = `</v2/p/referrers/${subject}?page=${i + 1}>; rel="next"`
          return json(200, { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [referrers[i]] }, headers)
        }
        if (url.pathname === '/v2/p/manifests/silent') return // never answers
        if (url.pathname === `/v2/p/blobs/${stallDigest}`) {
          // Headers and part of the body, then silence with the connection open.
          res.writeHead(200, { 'content-length': String(stallBytes.length) })
          res.write(stallBytes.subarray(0, 1000))
          return
        }
        if (url.pathname.startsWith('/v2/p/manifests/typed-')) {
          // An index without a mediaType field, served with its type in Content-Type; and a lie.
          const doc = Buffer.from(
            JSON.stringify(
              url.pathname.endsWith('lie')
                ? { schemaVersion: 2, mediaType: MediaType.OciManifest, config: {}, layers: [] }
                : { schemaVersion: 2, manifests: [] },
            ),
          )
          res.writeHead(200, { 'content-type': `${MediaType.OciIndex}; charset=utf-8`, 'docker-content-digest': digestOf(doc) })
          res.end(doc)
          return
        }
        if (url.pathname === '/v2/p/manifests/huge') {
          res.writeHead(200, { 'content-type': MediaType.OciManifest, 'content-length': String(5 * 1024 * 1024) })
          res.end(Buffer.alloc(5 * 1024 * 1024, 0x20))
          return
        }
        if (url.pathname === `/v2/p/blobs/${blobDigest}`) {
          const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
          if (m) {
            // Hostile: claims a range that starts elsewhere.
            res.writeHead(206, { 'content-range': `bytes 0-${blobBytes.length - 1}/${blobBytes.length}`, 'content-length': String(blobBytes.length) })
            res.end(blobBytes)
            return
          }
          res.writeHead(200, { 'content-length': String(blobBytes.length) })
          res.write(blobBytes.subarray(0, 10_000), () => res.socket?.destroy())
          return
        }
        if (req.method === 'POST' && url.pathname === '/v2/refused/blobs/uploads/') {
          res.writeHead(202, { location: '/v2/refused/blobs/uploads/r1', 'content-length': '0' })
          return res.end()
        }
        if (req.method === 'DELETE' && url.pathname === '/v2/refused/blobs/uploads/r1') {
          res.writeHead(204)
          return res.end()
        }
        if (req.method === 'POST' && url.pathname === '/v2/p/blobs/uploads/') {
          uploaded = []
          res.writeHead(202, { location: '/v2/p/blobs/uploads/u1?state=0', 'oci-chunk-min-length': '20000', 'content-length': '0' })
          return res.end()
        }
        if (url.pathname === '/v2/p/blobs/uploads/u1') {
          const offset = uploaded.reduce((n, b) => n + b.length, 0)
          if (req.method === 'PATCH') {
            // Without Content-Range: a streamed upload (what docker and skopeo send), appended.
            const m = /^(\d+)-(\d+)$/.exec((req.headers['content-range'] as string) ?? '')
            if (req.headers['content-range'] !== undefined && (!m || Number(m[1]) !== offset)) {
              res.writeHead(416)
              return res.end()
            }
            uploaded.push(body)
            res.writeHead(202, {
              location: `/v2/p/blobs/uploads/u1?state=${offset + body.length}`,
              range: `0-${offset + body.length - 1}`,
              'content-length': '0',
            })
            return res.end()
          }
          if (req.method === 'PUT') {
            uploaded.push(body)
            const all = Buffer.concat(uploaded)
            if (digestOf(all) !== url.searchParams.get('digest')) return json(400, { errors: [{ code: 'DIGEST_INVALID', message: 'digest did not match' }] })
            res.writeHead(201, { location: `/v2/p/blobs/${digestOf(all)}`, 'docker-content-digest': digestOf(all), 'content-length': '0' })
            return res.end()
          }
        }
        json(404, { errors: [{ code: 'NAME_UNKNOWN', message: 'nope' }] })
      })
    })
    listening = await listenOnLoopback(server)
    host = listening.host
  })
  after(() => listening.stop())

  const client = (extra: { chunkSize?: number } = {}): RegistryClient =>
    new RegistryClient({ registry: host, tlsVerify: false, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 }, env: { HOME: '/nonexistent' }, ...extra })

  test('tag pagination: n=2 over 5 tags follows Link: 3 pages, every tag once, in order', async () => {
    mode = 'link'
    seen = []
    const c = client()
    try {
      assert.deepEqual(await c.listTags('p', { pageSize: 2 }), TAGS)
      const pages = seen.filter((s) => s.url.startsWith('/v2/p/tags/list'))
      assert.deepEqual(
        pages.map((s) => s.url),
        ['/v2/p/tags/list?n=2', '/v2/p/tags/list?n=2&last=beta', '/v2/p/tags/list?n=2&last=epsilon'],
      )
    } finally {
      await c.close()
    }
  })

  test('tag pagination without Link (older registries): continues with last= until a short page', async () => {
    mode = 'last-only'
    seen = []
    const c = client()
    try {
      assert.deepEqual(await c.listTags('p', { pageSize: 2 }), TAGS)
      assert.equal(seen.filter((s) => s.url.startsWith('/v2/p/tags/list')).length, 3)
    } finally {
      await c.close()
    }
  })

  test('security: a Link header pointing back at the same page does not loop forever', async () => {
    mode = 'loop'
    seen = []
    const c = client()
    try {
      assert.deepEqual(await c.listTags('p', { pageSize: 2 }), ['alpha', 'beta'])
      assert.ok(seen.length < 10)
    } finally {
      await c.close()
    }
  })

  test('referrers API: pages joined via Link, artifactType filter applied client-side too', async () => {
    const c = client()
    try {
      const all = await c.listReferrers('p', subject)
      assert.deepEqual(
        all.map((d) => d.digest),
        referrers.map((d) => d.digest),
      )
      const sigs = await c.listReferrers('p', subject, 'application/x-sig')
      assert.deepEqual(
        sigs.map((d) => d.digest),
        [referrers[1]!.digest],
      )
    } finally {
      await c.close()
    }
  })

  test('OCI-Chunk-Min-Length raises the chunk size: PATCHes of 20000 bytes, not 1024', async () => {
    seen = []
    const c = client({ chunkSize: 1024 })
    try {
      const data = randomBytes(65_000)
      const r = await c.putBlob('p', stream(data, 3000), { digest: digestOf(data), size: data.length })
      assert.equal(r.digest, digestOf(data))
      const patches = seen.filter((s) => s.method === 'PATCH')
      assert.deepEqual(
        patches.map((p) => p.length),
        [20_000, 20_000, 20_000],
      )
      assert.deepEqual(
        patches.map((p) => p.contentRange),
        ['0-19999', '20000-39999', '40000-59999'],
      )
      const put = seen.find((s) => s.method === 'PUT')!
      assert.equal(put.length, 5000)
      assert.equal(put.contentRange, '60000-64999')
      assert.ok(put.url.includes('state=60000'), 'the closing PUT uses the Location of the last PATCH')
    } finally {
      await c.close()
    }
  })

  test('streamed upload (the default): a blob over 8 MiB goes in ONE PATCH with Content-Range 0-(N-1) and Content-Length N, closed by an empty PUT ?digest=', async () => {
    seen = []
    const c = client()
    try {
      const data = randomBytes(MONOLITHIC_MAX + 100_000)
      const r = await c.putBlob('p', stream(data, 64 * 1024), { digest: digestOf(data), size: data.length })
      assert.deepEqual(r, { digest: digestOf(data), size: data.length })
      const uploads = seen.filter((s) => s.url.startsWith('/v2/p/blobs/uploads/'))
      assert.deepEqual(
        uploads.map((s) => s.method),
        ['POST', 'PATCH', 'PUT'],
      )
      const [, patch, put] = uploads
      assert.equal(patch!.length, data.length)
      assert.equal(patch!.contentRange, `0-${data.length - 1}`)
      assert.equal(patch!.contentLength, String(data.length))
      assert.equal(put!.length, 0)
      assert.equal(put!.contentRange, undefined)
      assert.ok(put!.url.includes(`state=${data.length}`), 'the closing PUT uses the Location of the PATCH')
      assert.ok(put!.url.includes(`digest=${encodeURIComponent(digestOf(data))}`) || put!.url.includes(`digest=${digestOf(data)}`))
    } finally {
      await c.close()
    }
  })

  test('streamed upload of unknown size: over 8 MiB one PATCH in chunked encoding (no Content-Range); under it one PUT', async () => {
    seen = []
    const c = client()
    try {
      const big = randomBytes(MONOLITHIC_MAX + 5000)
      assert.equal((await c.putBlob('p', stream(big, 64 * 1024))).digest, digestOf(big))
      const patches = seen.filter((s) => s.method === 'PATCH')
      assert.equal(patches.length, 1)
      assert.equal(patches[0]!.length, big.length)
      assert.equal(patches[0]!.chunked, true)
      assert.equal(patches[0]!.contentRange, undefined)
      seen = []
      const small = randomBytes(MONOLITHIC_MAX - 1)
      assert.equal((await c.putBlob('p', stream(small, 64 * 1024))).digest, digestOf(small))
      assert.deepEqual(
        seen.filter((s) => s.url.startsWith('/v2/p/blobs/uploads/')).map((s) => [s.method, s.length]),
        [
          ['POST', 0],
          ['PUT', small.length],
        ],
      )
    } finally {
      await c.close()
    }
  })

  test('a streamed PATCH the registry cuts off because it refuses the upload reports the refusal (from the upload status), without starting over', async () => {
    seen = []
    const c = client()
    try {
      const data = randomBytes(MONOLITHIC_MAX + 1000)
      let reopened = 0
      const reopen = async () => {
        reopened++
        return stream(data, 64 * 1024)
      }
      await assert.rejects(c.putBlob('refused', stream(data, 64 * 1024), { digest: digestOf(data), size: data.length }, { reopen }), (e) => {
        assert.ok(isLadingError(e, 'DENIED') || isLadingError(e, 'UNAUTHORIZED'), String(e))
        assert.match((e as Error).message, /denied/)
        assert.doesNotMatch((e as Error).message, /\n/)
        return true
      })
      assert.equal(reopened, 0, 'a refusal is not retried')
      assert.deepEqual(
        seen
          .filter((q) => q.url.startsWith('/v2/refused/blobs/uploads/r1'))
          .map((q) => q.method)
          .slice(0, 2),
        ['PATCH', 'GET'],
      )
    } finally {
      await c.close()
    }
  })

  test('a registry that never answers is a NETWORK error after the timeout (retried), not a hang', async () => {
    const c = new RegistryClient({
      registry: host,
      tlsVerify: false,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
      timeoutMs: 300,
      env: { HOME: '/nonexistent' },
    })
    try {
      const t0 = Date.now()
      await assert.rejects(c.getManifest('p', 'silent'), (e) => isLadingError(e, 'NETWORK') && /GET manifest silent/.test((e as Error).message))
      assert.ok(Date.now() - t0 < 5000)
      assert.equal(seen.filter((s) => s.url === '/v2/p/manifests/silent').length, 2)
    } finally {
      await c.close()
    }
  })

  test('a blob body that stalls midway fails after the timeout (resumes retried), not a hang', async () => {
    const c = new RegistryClient({
      registry: host,
      tlsVerify: false,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
      timeoutMs: 300,
      env: { HOME: '/nonexistent' },
    })
    try {
      const t0 = Date.now()
      await assert.rejects(
        async () => buffer(await c.getBlob('p', { digest: stallDigest, size: stallBytes.length })),
        (e) => isLadingError(e) && /timed out|no answer|ETIMEDOUT|resum/i.test((e as Error).message),
      )
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`)
    } finally {
      await c.close()
    }
  })

  test('media type: Content-Type decides when the document has no mediaType field; a contradicting field is refused', async () => {
    const c = client()
    try {
      assert.equal((await c.getManifest('p', 'typed-ok')).mediaType, MediaType.OciIndex)
      await assert.rejects(c.getManifest('p', 'typed-lie'), (e) => isLadingError(e, 'INVALID_MANIFEST') && /does not match/.test((e as Error).message))
    } finally {
      await c.close()
    }
  })

  test('security: a manifest over 4 MiB is refused before it is read whole (SIZE_LIMIT)', async () => {
    const c = client()
    try {
      await assert.rejects(c.getManifest('p', 'huge'), (e) => isLadingError(e, 'SIZE_LIMIT'))
    } finally {
      await c.close()
    }
  })

  test('security: a resumed download whose Content-Range starts elsewhere is refused, not spliced', async () => {
    const c = client()
    try {
      await assert.rejects(
        async () => buffer(await c.getBlob('p', { digest: blobDigest, size: blobBytes.length })),
        (e) => {
          assert.ok(isLadingError(e, 'REGISTRY_ERROR'), String(e))
          assert.match((e as Error).message, /resumed at byte 10000/)
          return true
        },
      )
      assert.ok(seen.some((s) => s.range === 'bytes=10000-'))
    } finally {
      await c.close()
    }
  })
})
