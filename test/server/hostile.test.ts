/**
 * Security rules of `lading serve` against hostile HTTP: each request gets one spec error (or
 * a closed connection for a client that stalls or lies about its length), nothing is written
 * outside the root, nothing half-written becomes visible, and the server keeps serving.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { digestOf } from '../../src/digest/index.js'
import { MediaType } from '../../src/spec/media-types.js'
import { errorCode, request, startTestServer, type TestServer } from '../helpers/lading-server.js'

/** Send raw bytes on a fresh connection; resolves with everything the server sent before it closed (or after `waitMs`). */
function raw(
  host: string,
  port: number,
  data: Buffer | string,
  opts: { waitMs?: number; endWrite?: boolean } = {},
): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host)
    let text = ''
    let settled = false
    const done = (closedByServer: boolean): void => {
      if (!settled) {
        settled = true
        s.destroy()
        resolve({ text, closedByServer })
      }
    }
    s.on('data', (b: Buffer) => {
      text += b.toString('latin1')
    })
    s.on('close', () => done(true))
    s.on('error', (e) => {
      if (!settled) {
        settled = true
        reject(e)
      }
    })
    s.on('connect', () => {
      s.write(data)
      if (opts.endWrite) s.end()
    })
    setTimeout(() => done(false), opts.waitMs ?? 3000)
  })
}

describe('lading serve: hostile HTTP', () => {
  let s: TestServer
  let port: number
  let sentinel: string
  before(async () => {
    s = await startTestServer({ headersTimeoutMs: 400, idleTimeoutMs: 600 })
    port = s.server.port
    sentinel = path.join(path.dirname(s.root), 'sentinel')
    await fsp.mkdir(sentinel)
  })
  after(async () => {
    // Every test leaves the server serving and the sentinel beside the root untouched.
    assert.equal((await request(`${s.url}/v2/`, 'GET')).status, 200)
    assert.deepEqual(await fsp.readdir(sentinel), [])
    assert.deepEqual((await fsp.readdir(path.dirname(s.root))).sort(), ['root', 'sentinel'])
    await s.stop()
  })

  test('path traversal in repository names is NAME_INVALID before the file system is touched', async () => {
    for (const p of [
      '/v2/../sentinel/tags/list',
      '/v2/a/../../sentinel/tags/list',
      '/v2/%2e%2e/sentinel/tags/list',
      '/v2/..%2fsentinel/tags/list',
      '/v2//etc/tags/list',
      '/v2/a/./b/tags/list',
      '/v2/UPPER/tags/list',
      '/v2/a/blobs/tags/list',
      '/v2/x/index.json/tags/list',
    ]) {
      const r = await request(`${s.url}${p}`, 'GET')
      assert.equal(r.status, 400, p)
      assert.equal(errorCode(r), 'NAME_INVALID', p)
    }
    const put = await request(`${s.url}/v2/..%2f..%2fsentinel/manifests/latest`, 'PUT', { body: '{}', headers: { 'Content-Type': MediaType.OciManifest } })
    assert.equal(errorCode(put), 'NAME_INVALID')
    const post = await request(`${s.url}/v2/a/..%2F..%2Fsentinel/blobs/uploads/`, 'POST')
    assert.equal(errorCode(post), 'NAME_INVALID')
  })

  test('path traversal in digests, references and upload ids is refused', async () => {
    const blob = await request(`${s.url}/v2/t/blobs/sha256:..%2f..%2f..%2fsentinel`, 'GET')
    assert.equal(blob.status, 400)
    assert.equal(errorCode(blob), 'DIGEST_INVALID')
    const mount = await request(`${s.url}/v2/t/blobs/uploads/?mount=sha256:../../x&from=t`, 'POST')
    assert.equal(errorCode(mount), 'DIGEST_INVALID')
    const tag = await request(`${s.url}/v2/t/manifests/..%2f..%2fsentinel`, 'PUT', { body: '{}', headers: { 'Content-Type': MediaType.OciManifest } })
    assert.equal(tag.status, 400)
    for (const id of ['..%2f..%2f..%2fsentinel', '..', '%2e%2e']) {
      const r = await request(`${s.url}/v2/t/blobs/uploads/${id}`, 'PATCH', { body: 'x' })
      assert.ok(r.status === 404 || r.status === 400, `${id}: ${r.status}`)
    }
    const from = await request(`${s.url}/v2/t/blobs/uploads/?mount=${digestOf(Buffer.from('a'))}&from=../../sentinel`, 'POST')
    assert.equal(errorCode(from), 'NAME_INVALID')
  })

  test('bad Content-Range is BLOB_UPLOAD_INVALID; a range that disagrees with Content-Length is SIZE_INVALID', async () => {
    const loc = (await request(`${s.url}/v2/cr/blobs/uploads/`, 'POST')).headers.location!
    for (const cr of ['abc', '5-', '-5', '0-1-2', 'bytes 0-1/2']) {
      const r = await request(`${s.url}${loc}`, 'PATCH', { body: 'xx', headers: { 'Content-Range': cr } })
      assert.equal(r.status, 400, cr)
      assert.equal(errorCode(r), 'BLOB_UPLOAD_INVALID', cr)
    }
    const len = await request(`${s.url}${loc}`, 'PATCH', { body: 'xx', headers: { 'Content-Range': '0-9' } })
    assert.equal(errorCode(len), 'SIZE_INVALID')
    const back = await request(`${s.url}${loc}`, 'PATCH', { body: 'xx', headers: { 'Content-Range': '5-1' } })
    assert.equal(back.status, 416)
    assert.equal((await request(`${s.url}${loc}`, 'GET')).headers.range, '0-0', 'nothing was appended')
  })

  test('oversized request headers get 431 and the server keeps serving', async () => {
    const r = await raw('127.0.0.1', port, `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`)
    assert.match(r.text, /^HTTP\/1\.1 431 /)
    assert.equal((await request(`${s.url}/v2/`, 'GET')).status, 200)
  })

  test('manifests over 4 MiB are 413, declared or streamed, and nothing is stored', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20)
    const declared = await request(`${s.url}/v2/big/manifests/v1`, 'PUT', { body: big, headers: { 'Content-Type': MediaType.OciManifest } })
    assert.equal(declared.status, 413)
    assert.equal(errorCode(declared), 'MANIFEST_INVALID')
    const streamed = await request(`${s.url}/v2/big/manifests/v1`, 'PUT', {
      headers: { 'Content-Type': MediaType.OciManifest, 'Transfer-Encoding': 'chunked' },
      body: (req) => {
        for (let i = 0; i < 5; i++) req.write(Buffer.alloc(1024 * 1024, 0x20))
        req.end()
      },
    }).catch((e: Error) => ({ status: -1, body: Buffer.from(e.message), headers: {} }))
    // The server answers 413 as soon as the limit passes and closes; the client may see the reset first.
    assert.ok(streamed.status === 413 || streamed.status === -1, String(streamed.status))
    assert.equal((await request(`${s.url}/v2/big/tags/list`, 'GET')).status, 404)
  })

  test('a body shorter than its Content-Length leaves the upload where it was', async () => {
    const loc = (await request(`${s.url}/v2/short/blobs/uploads/`, 'POST')).headers.location!
    const r = await raw(
      '127.0.0.1',
      port,
      `PATCH ${loc} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: application/octet-stream\r\n\r\n${'y'.repeat(50)}`,
      { endWrite: true, waitMs: 2000 },
    )
    assert.equal(r.text.startsWith('HTTP/1.1 202'), false, 'a short chunk is never accepted')
    await sleep(100)
    assert.equal((await request(`${s.url}${loc}`, 'GET')).headers.range, '0-0')
  })

  test('an error answered before a big body has arrived closes the connection (the rest is never read)', async () => {
    // An upload to a session that does not exist: refused at once, while 64 MiB are still declared.
    const r = await raw(
      '127.0.0.1',
      port,
      `PATCH /v2/nobody/blobs/uploads/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n${'z'.repeat(1000)}`,
      { waitMs: 2000 },
    )
    assert.match(r.text, /^HTTP\/1\.1 404 /)
    assert.match(r.text, /\r\nConnection: close\r\n/i)
    assert.equal(r.closedByServer, true, 'the server hung up instead of reading 64 MiB it will not use')
  })

  test('a Content-Length that is not a number is a 400 from the HTTP parser', async () => {
    const r = await raw('127.0.0.1', port, 'PUT /v2/x/manifests/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n{}')
    assert.match(r.text, /^HTTP\/1\.1 400 /)
  })

  test('slow clients: stalled headers and stalled bodies are cut off, and a stalled chunk is not half-applied', async () => {
    const t0 = Date.now()
    const headers = await raw('127.0.0.1', port, 'GET /v2/ HTTP/1.1\r\nHost: x\r\n', { waitMs: 5000 })
    assert.ok(headers.closedByServer, 'the server closed a connection whose headers never ended')
    assert.ok(Date.now() - t0 < 4500)
    const loc = (await request(`${s.url}/v2/slow/blobs/uploads/`, 'POST')).headers.location!
    const body = await raw('127.0.0.1', port, `PATCH ${loc} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${'z'.repeat(10)}`, { waitMs: 5000 })
    assert.ok(body.closedByServer, 'the server closed a connection whose body stopped')
    await sleep(100)
    assert.equal((await request(`${s.url}${loc}`, 'GET')).headers.range, '0-0')
  })

  test('a blob whose bytes do not match its digest is DIGEST_INVALID and never visible', async () => {
    const bytes = randomBytes(1000)
    const claimed = digestOf(randomBytes(10))
    const r = await request(`${s.url}/v2/mismatch/blobs/uploads/?digest=${claimed}`, 'POST', { body: bytes })
    assert.equal(r.status, 400)
    assert.equal(errorCode(r), 'DIGEST_INVALID')
    assert.equal((await request(`${s.url}/v2/mismatch/blobs/${claimed}`, 'HEAD')).status, 404)
    const m = await request(`${s.url}/v2/mismatch/manifests/${claimed}`, 'PUT', {
      body: '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x.test","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}',
      headers: { 'Content-Type': MediaType.OciManifest },
    })
    assert.equal(errorCode(m), 'DIGEST_INVALID')
  })

  test('a registry tag that is no OCI ref.name is refused clearly, and errors never name server paths', async () => {
    const r = await request(`${s.url}/v2/tagname/manifests/_under`, 'PUT', {
      body: '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}',
      headers: { 'Content-Type': MediaType.OciIndex },
    })
    assert.equal(r.status, 400)
    assert.match(JSON.parse(r.body.toString()).errors[0].message, /not an OCI image layout ref\.name/)
    const ok = await request(`${s.url}/v2/tagname/manifests/fine`, 'PUT', {
      body: '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}',
      headers: { 'Content-Type': MediaType.OciIndex },
    })
    assert.equal(ok.status, 201)
    // A repository whose index.json is corrupt: the error says so without the server's paths.
    await fsp.writeFile(path.join(s.root, 'tagname', 'index.json'), '{not json')
    const bad = await request(`${s.url}/v2/tagname/tags/list`, 'GET')
    assert.equal(bad.status >= 400, true)
    assert.equal(bad.body.toString().includes(s.root), false, bad.body.toString())
  })

  test('JSON that is not a manifest is MANIFEST_INVALID: one error each', async () => {
    const cases: Array<[string, string]> = [
      ['{"hello":1}', MediaType.OciManifest],
      ['[1,2,3]', MediaType.OciManifest],
      ['not json', MediaType.OciManifest],
      ['{"schemaVersion":2,"manifests":"x"}', MediaType.OciIndex],
      ['{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}', 'application/vnd.docker.distribution.manifest.v1+json'],
      ['{"a":1}', 'application/json'],
      ['{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}', MediaType.OciManifest],
      ['\xff\xfe{}', MediaType.OciManifest],
    ]
    for (const [body, type] of cases) {
      const r = await request(`${s.url}/v2/notjson/manifests/v1`, 'PUT', { body: Buffer.from(body, 'latin1'), headers: { 'Content-Type': type } })
      assert.equal(r.status, 400, body)
      assert.equal(errorCode(r), 'MANIFEST_INVALID', body)
      assert.equal(JSON.parse(r.body.toString()).errors.length, 1)
    }
  })
})
