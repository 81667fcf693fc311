/**
 * `lading serve` speaks distribution-spec v1.1, request by request (Node's http client), and its
 * storage is a set of valid OCI layouts that Lading's own commands read while it serves.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { digestOf } from '../../src/digest/index.js'
import { POOL_BLOCK_SIZE, drainPool, poolStats } from '../../src/io/block-pool.js'
import { MediaType } from '../../src/spec/media-types.js'
import { RegistryClient } from '../../src/transport/registry/client.js'
import { errorCode, request, startTestServer, type TestServer } from '../helpers/lading-server.js'
import { ladingAsyncOk } from '../helpers/cli.js'
import { tempDir } from '../fixtures/temp.js'
import { blob, makeArtifact, makeImage, rawManifest, stream, type TestImage } from '../fixtures/image.js'
import { buffer as collect } from 'node:stream/consumers'

async function pushImage(client: RegistryClient, repo: string, img: TestImage, tag: string): Promise<void> {
  for (const b of [img.config, ...img.layers]) await client.putBlob(repo, stream(b.bytes), b.desc)
  await client.putManifest(repo, tag, img.manifest)
}

describe('lading serve: distribution-spec protocol', () => {
  let s: TestServer
  let client: RegistryClient
  before(async () => {
    s = await startTestServer({ chunkMinLength: 1024 })
    client = new RegistryClient({ registry: s.host, tlsVerify: false })
  })
  after(async () => {
    await client?.close()
    await s?.stop()
  })

  test('GET /v2/ answers 200 with the API version header', async () => {
    const r = await request(`${s.url}/v2/`, 'GET')
    assert.equal(r.status, 200)
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0')
  })

  test('monolithic POST ?digest= stores a blob; GET, HEAD and Range read it back', async () => {
    const bytes = randomBytes(5000)
    const d = digestOf(bytes)
    const put = await request(`${s.url}/v2/mono/a/blobs/uploads/?digest=${d}`, 'POST', { body: bytes, headers: { 'Content-Type': 'application/octet-stream' } })
    assert.equal(put.status, 201)
    assert.equal(put.headers.location, `/v2/mono/a/blobs/${d}`)
    assert.equal(put.headers['docker-content-digest'], d)
    const head = await request(`${s.url}/v2/mono/a/blobs/${d}`, 'HEAD')
    assert.equal(head.status, 200)
    assert.equal(head.headers['content-length'], '5000')
    assert.equal(head.body.length, 0)
    const get = await request(`${s.url}/v2/mono/a/blobs/${d}`, 'GET')
    assert.deepEqual(get.body, bytes)
    const part = await request(`${s.url}/v2/mono/a/blobs/${d}`, 'GET', { headers: { Range: 'bytes=100-199' } })
    assert.equal(part.status, 206)
    assert.equal(part.headers['content-range'], 'bytes 100-199/5000')
    assert.deepEqual(part.body, bytes.subarray(100, 200))
    const tail = await request(`${s.url}/v2/mono/a/blobs/${d}`, 'GET', { headers: { Range: 'bytes=-10' } })
    assert.deepEqual(tail.body, bytes.subarray(4990))
    const outside = await request(`${s.url}/v2/mono/a/blobs/${d}`, 'GET', { headers: { Range: 'bytes=6000-' } })
    assert.equal(outside.status, 416)
    assert.equal(outside.headers['content-range'], 'bytes */5000')
  })

  test('chunked upload: 202s with Range, status GET, 416 for an out-of-order chunk, PUT closes', async () => {
    const bytes = randomBytes(3000)
    const d = digestOf(bytes)
    const post = await request(`${s.url}/v2/chunks/blobs/uploads/`, 'POST')
    assert.equal(post.status, 202)
    assert.equal(post.headers['oci-chunk-min-length'], '1024')
    const loc = post.headers.location!
    assert.match(loc, /^\/v2\/chunks\/blobs\/uploads\/[0-9a-f-]{36}$/)
    const c1 = await request(`${s.url}${loc}`, 'PATCH', {
      body: bytes.subarray(0, 1500),
      headers: { 'Content-Range': '0-1499', 'Content-Type': 'application/octet-stream' },
    })
    assert.equal(c1.status, 202)
    assert.equal(c1.headers.range, '0-1499')
    const again = await request(`${s.url}${loc}`, 'PATCH', { body: bytes.subarray(0, 1500), headers: { 'Content-Range': '0-1499' } })
    assert.equal(again.status, 416)
    assert.equal(again.headers.range, '0-1499')
    const status = await request(`${s.url}${loc}`, 'GET')
    assert.equal(status.status, 204)
    assert.equal(status.headers.range, '0-1499')
    const c2 = await request(`${s.url}${loc}`, 'PATCH', { body: bytes.subarray(1500), headers: { 'Content-Range': '1500-2999' } })
    assert.equal(c2.status, 202)
    const done = await request(`${s.url}${loc}?digest=${d}`, 'PUT')
    assert.equal(done.status, 201)
    assert.deepEqual((await request(`${s.url}/v2/chunks/blobs/${d}`, 'GET')).body, bytes)
    assert.equal((await request(`${s.url}${loc}`, 'GET')).status, 404, 'the session ends with its PUT')
  })

  test('streamed PATCH without Content-Range, then PUT with the last bytes; a wrong digest is DIGEST_INVALID and nothing is stored', async () => {
    const bytes = randomBytes(70_000)
    const loc = (await request(`${s.url}/v2/stream/blobs/uploads/`, 'POST')).headers.location!
    assert.equal((await request(`${s.url}${loc}`, 'PATCH', { body: bytes.subarray(0, 60_000) })).status, 202)
    const put = await request(`${s.url}${loc}?digest=${digestOf(bytes)}`, 'PUT', {
      body: bytes.subarray(60_000),
      headers: { 'Content-Type': 'application/octet-stream' },
    })
    assert.equal(put.status, 201)
    const loc2 = (await request(`${s.url}/v2/stream/blobs/uploads/`, 'POST')).headers.location!
    const wrong = digestOf(Buffer.from('something else'))
    const bad = await request(`${s.url}${loc2}?digest=${wrong}`, 'PUT', { body: bytes })
    assert.equal(bad.status, 400)
    assert.equal(errorCode(bad), 'DIGEST_INVALID')
    assert.equal((await request(`${s.url}/v2/stream/blobs/${wrong}`, 'HEAD')).status, 404)
  })

  test('a whole-blob GET bigger than a pool block is exact, recycles its blocks, and a client leaving mid-GET stops nothing', async () => {
    const bytes = randomBytes(5 * POOL_BLOCK_SIZE + 12_345)
    const d = digestOf(bytes)
    assert.equal((await request(`${s.url}/v2/pooled/blobs/uploads/?digest=${d}`, 'POST', { body: bytes })).status, 201)
    const get = async (): Promise<void> => {
      const r = await request(`${s.url}/v2/pooled/blobs/${d}`, 'GET')
      assert.equal(r.status, 200)
      assert.equal(r.headers['content-length'], String(bytes.length))
      assert.ok(r.body.equals(bytes), 'the bytes served are the bytes stored')
    }
    drainPool()
    const first = poolStats().made
    await get()
    assert.ok(poolStats().made > first, 'the GET went out through blocks of the pool')
    const before = poolStats().made
    for (let i = 0; i < 3; i++) await get()
    // Without recycling each GET would make 6 fresh blocks (18 here); with it, three make fewer
    // than one would (how many are in flight at once depends on how fast the client reads).
    assert.ok(poolStats().made - before < 6, `blocks made by three more GETs: ${poolStats().made - before}`)
    // A client that goes away after the first bytes: the server closes the file and serves on.
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${s.url}/v2/pooled/blobs/${d}`, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', (e) => (req.destroyed ? resolve() : reject(e)))
    })
    await get()
  })

  test('a HEAD answered 404 keeps its keep-alive connection (no reconnect after "blob unknown")', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    let sockets = 0
    const create = agent.createConnection.bind(agent)
    agent.createConnection = ((...args: Parameters<typeof create>) => {
      sockets++
      return create(...args)
    }) as typeof agent.createConnection
    try {
      const unknown = digestOf(Buffer.from('never pushed'))
      const head = await request(`${s.url}/v2/keepalive/blobs/${unknown}`, 'HEAD', { agent })
      assert.equal(head.status, 404)
      assert.notEqual(head.headers.connection, 'close')
      assert.equal((await request(`${s.url}/v2/`, 'GET', { agent })).status, 200)
      assert.equal(sockets, 1, 'both requests went over one connection')
    } finally {
      agent.destroy()
    }
  })

  test('DELETE of an upload cancels it', async () => {
    const loc = (await request(`${s.url}/v2/cancel/blobs/uploads/`, 'POST')).headers.location!
    assert.equal((await request(`${s.url}${loc}`, 'DELETE')).status, 204)
    const r = await request(`${s.url}${loc}`, 'GET')
    assert.equal(r.status, 404)
    assert.equal(errorCode(r), 'BLOB_UPLOAD_UNKNOWN')
  })

  test('manifests by tag and digest: headers, exact bytes, sha512, delete by tag and by digest', async () => {
    const img = makeImage({ layers: [100, 200] })
    await pushImage(client, 'm/img', img, 'v1')
    for (const ref of ['v1', img.manifest.digest]) {
      const r = await request(`${s.url}/v2/m/img/manifests/${ref}`, 'GET')
      assert.equal(r.status, 200)
      assert.equal(r.headers['content-type'], MediaType.OciManifest)
      assert.equal(r.headers['docker-content-digest'], img.manifest.digest)
      assert.deepEqual(r.body, img.manifest.bytes)
      const h = await request(`${s.url}/v2/m/img/manifests/${ref}`, 'HEAD')
      assert.equal(h.headers['content-length'], String(img.manifest.bytes.length))
    }
    const d512 = digestOf(img.manifest.bytes, 'sha512')
    const p512 = await request(`${s.url}/v2/m/img/manifests/${d512}`, 'PUT', { body: img.manifest.bytes, headers: { 'Content-Type': MediaType.OciManifest } })
    assert.equal(p512.status, 201)
    assert.equal(p512.headers['docker-content-digest'], d512)
    assert.deepEqual((await request(`${s.url}/v2/m/img/manifests/${d512}`, 'GET')).body, img.manifest.bytes)

    assert.equal((await request(`${s.url}/v2/m/img/manifests/v1`, 'DELETE')).status, 202)
    assert.equal((await request(`${s.url}/v2/m/img/manifests/v1`, 'GET')).status, 404)
    assert.equal((await request(`${s.url}/v2/m/img/manifests/${img.manifest.digest}`, 'GET')).status, 200, 'deleting a tag keeps the manifest')
    assert.equal((await request(`${s.url}/v2/m/img/manifests/${img.manifest.digest}`, 'DELETE')).status, 202)
    const gone = await request(`${s.url}/v2/m/img/manifests/${img.manifest.digest}`, 'GET')
    assert.equal(gone.status, 404)
    assert.equal(errorCode(gone), 'MANIFEST_UNKNOWN')
  })

  test('a manifest naming blobs the repository lacks is MANIFEST_BLOB_UNKNOWN; a manifest in another repo does not count', async () => {
    const img = makeImage({ layers: [300] })
    await pushImage(client, 'mbu/one', img, 'v1')
    const r = await request(`${s.url}/v2/mbu/two/manifests/v1`, 'PUT', { body: img.manifest.bytes, headers: { 'Content-Type': MediaType.OciManifest } })
    assert.equal(r.status, 400)
    assert.equal(errorCode(r), 'MANIFEST_BLOB_UNKNOWN')
  })

  test('tags list: sorted, n/last pagination with a Link header, 404 NAME_UNKNOWN for no repository', async () => {
    const img = makeImage({ layers: [50] })
    await pushImage(client, 'tags/r', img, 'b')
    for (const t of ['a', 'd', 'c']) await client.putManifest('tags/r', t, img.manifest)
    const all = await request(`${s.url}/v2/tags/r/tags/list`, 'GET')
    assert.deepEqual(JSON.parse(all.body.toString()), { name: 'tags/r', tags: ['a', 'b', 'c', 'd'] })
    const p1 = await request(`${s.url}/v2/tags/r/tags/list?n=2`, 'GET')
    assert.deepEqual(JSON.parse(p1.body.toString()).tags, ['a', 'b'])
    assert.equal(p1.headers.link, '</v2/tags/r/tags/list?n=2&last=b>; rel="next"')
    const p2 = await request(`${s.url}/v2/tags/r/tags/list?n=2&last=b`, 'GET')
    assert.deepEqual(JSON.parse(p2.body.toString()).tags, ['c', 'd'])
    assert.equal(p2.headers.link, undefined)
    const zero = await request(`${s.url}/v2/tags/r/tags/list?n=0`, 'GET')
    assert.deepEqual(JSON.parse(zero.body.toString()).tags, [])
    assert.equal(zero.headers.link, undefined)
    const none = await request(`${s.url}/v2/tags/none/tags/list`, 'GET')
    assert.equal(none.status, 404)
    assert.equal(errorCode(none), 'NAME_UNKNOWN')
  })

  test('referrers: OCI-Subject on push, the list with artifactType, the filter and OCI-Filters-Applied', async () => {
    const img = makeImage({ layers: [60] })
    await pushImage(client, 'ref/r', img, 'v1')
    const subject = { mediaType: MediaType.OciManifest, digest: img.manifest.digest, size: img.manifest.bytes.length }
    const sbom = makeArtifact(subject, 'application/vnd.example.sbom')
    const sig = makeArtifact(subject, 'application/vnd.example.sig')
    for (const a of [sbom, sig]) {
      for (const b of [a.config, a.layer]) await client.putBlob('ref/r', stream(b.bytes), b.desc)
      const r = await request(`${s.url}/v2/ref/r/manifests/${a.manifest.digest}`, 'PUT', {
        body: a.manifest.bytes,
        headers: { 'Content-Type': MediaType.OciManifest },
      })
      assert.equal(r.status, 201)
      assert.equal(r.headers['oci-subject'], img.manifest.digest)
    }
    const list = await request(`${s.url}/v2/ref/r/referrers/${img.manifest.digest}`, 'GET')
    assert.equal(list.status, 200)
    assert.equal(list.headers['content-type'], MediaType.OciIndex)
    const idx = JSON.parse(list.body.toString())
    assert.deepEqual(idx.manifests.map((d: { artifactType: string }) => d.artifactType).sort(), ['application/vnd.example.sbom', 'application/vnd.example.sig'])
    assert.deepEqual(idx.manifests.find((d: { digest: string }) => d.digest === sbom.manifest.digest).annotations, { 'org.example.kind': 'sbom' })
    const filtered = await request(`${s.url}/v2/ref/r/referrers/${img.manifest.digest}?artifactType=application/vnd.example.sig`, 'GET')
    assert.equal(filtered.headers['oci-filters-applied'], 'artifactType')
    assert.deepEqual(
      JSON.parse(filtered.body.toString()).manifests.map((d: { digest: string }) => d.digest),
      [sig.manifest.digest],
    )
    const none = await request(`${s.url}/v2/ref/r/referrers/${digestOf(Buffer.from('x'))}`, 'GET')
    assert.equal(none.status, 200)
    assert.deepEqual(JSON.parse(none.body.toString()).manifests, [])
  })

  test('cross-repository mount with from, automatic mount without it, 202 for an unknown blob; blobs are stored once', async () => {
    const b = blob(randomBytes(4000), MediaType.OciLayerGzip)
    await client.putBlob('mount/src', stream(b.bytes), b.desc)
    const m = await request(`${s.url}/v2/mount/dst/blobs/uploads/?mount=${b.desc.digest}&from=mount/src`, 'POST')
    assert.equal(m.status, 201)
    assert.equal(m.headers.location, `/v2/mount/dst/blobs/${b.desc.digest}`)
    const auto = await request(`${s.url}/v2/mount/auto/blobs/uploads/?mount=${b.desc.digest}`, 'POST')
    assert.equal(auto.status, 201)
    const unknown = await request(`${s.url}/v2/mount/dst/blobs/uploads/?mount=${digestOf(Buffer.from('nope'))}&from=mount/src`, 'POST')
    assert.equal(unknown.status, 202)
    assert.match(unknown.headers.location!, /^\/v2\/mount\/dst\/blobs\/uploads\//)
    // One inode: the content store and three repositories.
    const st = await fsp.stat(path.join(s.root, 'mount', 'dst', 'blobs', 'sha256', b.desc.digest.slice(7)))
    assert.equal(st.nlink, 4)
  })

  test('_catalog lists repositories with pagination', async () => {
    const r = await request(`${s.url}/v2/_catalog`, 'GET')
    const repos = JSON.parse(r.body.toString()).repositories as string[]
    assert.ok(repos.includes('mono/a') && repos.includes('m/img'), repos.join(','))
    assert.deepEqual(repos, [...repos].sort())
    const p = await request(`${s.url}/v2/_catalog?n=1`, 'GET')
    assert.equal(JSON.parse(p.body.toString()).repositories.length, 1)
    assert.match(String(p.headers.link), /rel="next"/)
  })

  test('each repository is an OCI layout that lading ls and lading validate read while serving', async () => {
    const src = path.join(path.dirname(s.root), 'src-layout')
    await ladingAsyncOk(['init', '--layout', src])
    await ladingAsyncOk(['new', '--image', `${src}:base`])
    await ladingAsyncOk(['copy', '--quiet', '--dest-tls-verify=false', `oci:${src}:base`, `docker://${s.host}/layout/check:v7`])
    const dir = path.join(s.root, 'layout', 'check')
    assert.equal((await ladingAsyncOk(['ls', '--layout', dir])).stdout.trim(), 'v7')
    await ladingAsyncOk(['validate', '--layout', dir])
  })

  test('nested repositories: a/b first, then a, both layouts', async () => {
    const img = makeImage({ layers: [40] })
    await pushImage(client, 'nest/a/b', img, 'x')
    await pushImage(client, 'nest/a', img, 'y')
    assert.deepEqual(await client.listTags('nest/a'), ['y'])
    assert.deepEqual(await client.listTags('nest/a/b'), ['x'])
    assert.deepEqual(await collect(await client.getBlob('nest/a', img.layers[0]!.desc)), img.layers[0]!.bytes)
  })

  test('a Docker v2s2 manifest list keeps its media type; its children are required', async () => {
    const img = makeImage({ layers: [70] })
    const docker = rawManifest(
      {
        schemaVersion: 2,
        mediaType: MediaType.DockerManifest,
        config: { ...img.config.desc, mediaType: MediaType.DockerConfig },
        layers: img.layers.map((l) => ({ ...l.desc, mediaType: MediaType.DockerLayerGzip })),
      },
      MediaType.DockerManifest,
    )
    for (const b of [img.config, ...img.layers]) await client.putBlob('dock/r', stream(b.bytes), b.desc)
    const list = rawManifest(
      {
        schemaVersion: 2,
        mediaType: MediaType.DockerManifestList,
        manifests: [
          { mediaType: MediaType.DockerManifest, digest: docker.digest, size: docker.bytes.length, platform: { architecture: 'amd64', os: 'linux' } },
        ],
      },
      MediaType.DockerManifestList,
    )
    const early = await request(`${s.url}/v2/dock/r/manifests/multi`, 'PUT', { body: list.bytes, headers: { 'Content-Type': MediaType.DockerManifestList } })
    assert.equal(errorCode(early), 'MANIFEST_BLOB_UNKNOWN')
    await client.putManifest('dock/r', docker.digest, docker)
    await client.putManifest('dock/r', 'multi', list)
    const r = await request(`${s.url}/v2/dock/r/manifests/multi`, 'GET')
    assert.equal(r.headers['content-type'], MediaType.DockerManifestList)
    assert.deepEqual(r.body, list.bytes)
  })

  test('/health, /metrics (Prometheus text) and the access log', async () => {
    assert.equal((await request(`${s.url}/health`, 'GET')).status, 200)
    const m = (await request(`${s.url}/metrics`, 'GET')).body.toString()
    assert.match(m, /^lading_http_requests_total\{route="blob",method="GET",status="200"\} \d+$/m)
    assert.match(m, /^lading_http_request_duration_seconds_bucket\{route="manifest",le="\+Inf"\} \d+$/m)
    assert.match(m, /^lading_storage_bytes \d+$/m)
    assert.match(m, /^lading_uploads_in_flight 0$/m)
  })
})

describe('lading serve: read-only and access log', () => {
  test('--read-only refuses pushes and deletes with 405 and still serves pulls', async (t) => {
    // One root for both servers: the first one's is served again read-only.
    const root = path.join(tempDir(t, { prefix: 'lading-serve-ro-' }), 'root')
    const s = await startTestServer({ root })
    const img = makeImage({ layers: [10] })
    const client = new RegistryClient({ registry: s.host, tlsVerify: false })
    try {
      await pushImage(client, 'ro/r', img, 'v1')
    } finally {
      await client.close()
      await s.stop()
    }
    const lines: string[] = []
    const ro = await startTestServer({
      root,
      readOnly: true,
      accessLog: {
        write: (l: string) => {
          lines.push(l)
          return true
        },
      } as never,
    })
    try {
      assert.equal((await request(`${ro.url}/v2/ro/r/manifests/v1`, 'GET')).status, 200)
      const post = await request(`${ro.url}/v2/ro/r/blobs/uploads/`, 'POST')
      assert.equal(post.status, 405)
      assert.equal(errorCode(post), 'UNSUPPORTED')
      assert.equal((await request(`${ro.url}/v2/ro/r/manifests/v1`, 'DELETE')).status, 405)
      const rec = JSON.parse(lines.find((l) => l.includes('"DELETE"'))!)
      assert.equal(rec.status, 405)
      assert.equal(rec.repository, 'ro/r')
      assert.equal(rec.route, 'manifest')
    } finally {
      await ro.stop()
    }
  })
})
