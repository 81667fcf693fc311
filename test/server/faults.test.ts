/**
 * Nothing is lost (README Security rules): concurrent pushers sharing layers, two uploads of one
 * blob, a server killed with SIGKILL in the middle of uploads and restarted, and garbage
 * collection running in a loop during a push storm. Every repository validates afterwards.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, test } from 'node:test'
import { digestOf } from '../../src/digest/index.js'
import { MediaType } from '../../src/spec/media-types.js'
import { RegistryClient } from '../../src/transport/registry/client.js'
import { request, spawnServer, startTestServer } from '../helpers/lading-server.js'
import { ladingAsyncOk } from '../helpers/cli.js'
import { tempDir } from '../fixtures/temp.js'
import { blob, type Blob, rawManifest, stream } from '../fixtures/image.js'
import { buffer as collect } from 'node:stream/consumers'

/** A layer blob that is gzip (as its media type says, which `lading validate` checks) of random bytes. */
function gzipLayer(n: number): Blob {
  return blob(gzipSync(randomBytes(n), { level: 1 }), MediaType.OciLayerGzip)
}

/** An image of `shared` layers plus one of its own (configs differ, so every manifest does). */
function imageWith(shared: Blob[], own = 1000): { blobs: Blob[]; manifest: ReturnType<typeof rawManifest> } {
  const mine = gzipLayer(own)
  const layers = [...shared, mine]
  const config = blob(
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(() => digestOf(randomBytes(8))) } })),
    MediaType.OciConfig,
  )
  return {
    blobs: [config, ...layers],
    manifest: rawManifest({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: config.desc, layers: layers.map((l) => l.desc) }),
  }
}

async function validateAll(root: string, repos: string[]): Promise<void> {
  for (const r of repos) await ladingAsyncOk(['validate', '--layout', path.join(root, ...r.split('/'))])
}

describe('lading serve: concurrency, crashes and gc', () => {
  test('16 clients pushing images that share layers into one repository at once lose nothing', async () => {
    const s = await startTestServer()
    try {
      const shared = [gzipLayer(200_000), gzipLayer(50_000)]
      const images = Array.from({ length: 16 }, () => imageWith(shared))
      await Promise.all(
        images.map(async (img, i) => {
          const c = new RegistryClient({ registry: s.host, tlsVerify: false })
          try {
            for (const b of img.blobs) await c.putBlob('storm/one', stream(b.bytes), b.desc)
            await c.putManifest('storm/one', `t${i}`, img.manifest)
          } finally {
            await c.close()
          }
        }),
      )
      const c = new RegistryClient({ registry: s.host, tlsVerify: false })
      try {
        assert.equal((await c.listTags('storm/one')).length, 16)
        for (const [i, img] of images.entries()) {
          assert.equal((await c.getManifest('storm/one', `t${i}`)).digest, img.manifest.digest)
          for (const b of img.blobs) assert.deepEqual(await collect(await c.getBlob('storm/one', b.desc)), b.bytes)
        }
      } finally {
        await c.close()
      }
      await validateAll(s.root, ['storm/one'])
    } finally {
      await s.stop()
    }
  })

  test('two clients uploading the same blob at once both succeed, and it is stored once', async () => {
    const s = await startTestServer()
    try {
      const b = blob(randomBytes(3_000_000), MediaType.OciLayerGzip)
      const [r1, r2] = await Promise.all(
        ['same/a', 'same/b'].map(async (repo) => {
          const loc = (await request(`${s.url}/v2/${repo}/blobs/uploads/`, 'POST')).headers.location!
          return request(`${s.url}${loc}?digest=${b.desc.digest}`, 'PUT', { body: b.bytes })
        }),
      )
      assert.equal(r1!.status, 201)
      assert.equal(r2!.status, 201)
      const st = await fsp.stat(path.join(s.root, 'same', 'a', 'blobs', 'sha256', b.desc.digest.slice(7)))
      assert.equal(st.nlink, 3, 'one inode: the content store and both repositories')
      const same = await Promise.all(
        [1, 2].map(async () => {
          const loc = (await request(`${s.url}/v2/same/a/blobs/uploads/`, 'POST')).headers.location!
          return request(`${s.url}${loc}?digest=${b.desc.digest}`, 'PUT', { body: b.bytes })
        }),
      )
      assert.deepEqual(
        same.map((r) => r.status),
        [201, 201],
      )
      assert.deepEqual((await request(`${s.url}/v2/same/b/blobs/${b.desc.digest}`, 'GET')).body, b.bytes)
    } finally {
      await s.stop()
    }
  })

  test('SIGKILL in the middle of uploads: finished pushes stay, nothing half-written shows, sessions resume', async (t) => {
    const tmp = tempDir(t, { prefix: 'lading-serve-kill-' })
    const root = path.join(tmp, 'root')
    let server = await spawnServer(root)
    try {
      const done = imageWith([])
      const c = new RegistryClient({ registry: server.host, tlsVerify: false })
      for (const b of done.blobs) await c.putBlob('kill/r', stream(b.bytes), b.desc)
      await c.putManifest('kill/r', 'done', done.manifest)
      await c.close()

      // A chunked session with one chunk in, and a big streamed PATCH cut off by the kill.
      const chunked = randomBytes(300_000)
      const loc1 = (await request(`${server.url}/v2/kill/r/blobs/uploads/`, 'POST')).headers.location!
      assert.equal(
        (await request(`${server.url}${loc1}`, 'PATCH', { body: chunked.subarray(0, 100_000), headers: { 'Content-Range': '0-99999' } })).status,
        202,
      )
      const big = randomBytes(8 * 1024 * 1024)
      const loc2 = (await request(`${server.url}/v2/kill/r/blobs/uploads/`, 'POST')).headers.location!
      const cut = new Promise<void>((resolve) => {
        const req = http.request(`${server.url}${loc2}`, { method: 'PATCH', agent: false, headers: { 'Content-Length': big.length } })
        req.on('error', () => resolve())
        req.on('response', () => resolve())
        req.write(big.subarray(0, 3 * 1024 * 1024), () => {
          void server.kill('SIGKILL').then(() => {
            req.destroy()
            resolve()
          })
        })
      })
      await cut

      server = await spawnServer(root)
      const c2 = new RegistryClient({ registry: server.host, tlsVerify: false })
      assert.equal((await c2.getManifest('kill/r', 'done')).digest, done.manifest.digest, 'a finished push survives')
      for (const b of done.blobs) assert.deepEqual(await collect(await c2.getBlob('kill/r', b.desc)), b.bytes)
      await c2.close()
      assert.equal((await request(`${server.url}/v2/kill/r/blobs/${digestOf(big)}`, 'HEAD')).status, 404, 'an interrupted upload is no blob')

      // The chunked session resumes where its status says, and completes verified.
      const st1 = await request(`${server.url}${loc1}`, 'GET')
      assert.equal(st1.headers.range, '0-99999')
      assert.equal(
        (await request(`${server.url}${loc1}`, 'PATCH', { body: chunked.subarray(100_000), headers: { 'Content-Range': '100000-299999' } })).status,
        202,
      )
      assert.equal((await request(`${server.url}${loc1}?digest=${digestOf(chunked)}`, 'PUT')).status, 201)
      assert.deepEqual((await request(`${server.url}/v2/kill/r/blobs/${digestOf(chunked)}`, 'GET')).body, chunked)

      // The cut streamed session reports what reached the disk; the rest completes it.
      const st2 = await request(`${server.url}${loc2}`, 'GET')
      assert.equal(st2.status, 204)
      const have = Number(/^0-(\d+)$/.exec(String(st2.headers.range))![1]) + 1
      assert.ok(have <= 3 * 1024 * 1024, `${have} bytes kept`)
      const at = have === 1 ? 0 : have // "0-0" is an empty session
      assert.equal(
        (await request(`${server.url}${loc2}`, 'PATCH', { body: big.subarray(at), headers: { 'Content-Range': `${at}-${big.length - 1}` } })).status,
        202,
      )
      assert.equal((await request(`${server.url}${loc2}?digest=${digestOf(big)}`, 'PUT')).status, 201)
      await validateAll(root, ['kill/r'])
    } finally {
      await server.stop()
    }
  })

  test('gc in a loop (grace 0) during a push storm never removes what a finished push references', async () => {
    const s = await startTestServer()
    let stop = false
    let rounds = 0
    const gcLoop = (async () => {
      while (!stop) {
        await s.server.runGc({ graceMs: 0, uploadTtlMs: 60_000 })
        rounds++
        await sleep(5)
      }
    })()
    try {
      const shared = [gzipLayer(100_000)]
      const finished: Array<{ repo: string; tag: string; img: ReturnType<typeof imageWith> }> = []
      let retries = 0
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          const c = new RegistryClient({ registry: s.host, tlsVerify: false })
          try {
            for (let i = 0; i < 4; i++) {
              const repo = `gc/w${w % 3}`
              const img = imageWith(shared)
              for (let attempt = 0; ; attempt++) {
                for (const b of img.blobs) await c.putBlob(repo, stream(b.bytes), b.desc)
                try {
                  await c.putManifest(repo, `w${w}-${i}`, img.manifest)
                  break
                } catch (e) {
                  // gc (grace 0) may take blobs before their manifest lands: the push is refused
                  // (MANIFEST_BLOB_UNKNOWN), never accepted dangling. A client pushes them again.
                  if (!/MANIFEST_BLOB_UNKNOWN/.test(String(e)) || attempt > 20) throw e
                  retries++
                }
              }
              finished.push({ repo, tag: `w${w}-${i}`, img })
            }
          } finally {
            await c.close()
          }
        }),
      )
      stop = true
      await gcLoop
      await s.server.runGc({ graceMs: 0, uploadTtlMs: 60_000 })
      assert.ok(rounds > 0)
      const c = new RegistryClient({ registry: s.host, tlsVerify: false })
      try {
        for (const f of finished) {
          assert.equal((await c.getManifest(f.repo, f.tag)).digest, f.img.manifest.digest)
          for (const b of f.img.blobs) assert.deepEqual(await collect(await c.getBlob(f.repo, b.desc)), b.bytes)
        }
      } finally {
        await c.close()
      }
      await validateAll(s.root, ['gc/w0', 'gc/w1', 'gc/w2'])
      assert.equal(finished.length, 32, `${retries} manifest pushes were retried`)
    } finally {
      stop = true
      await gcLoop.catch(() => {})
      await s.stop()
    }
  })

  test('gc removes unreferenced blobs after the grace period, and expired upload sessions', async () => {
    const s = await startTestServer()
    try {
      const b = blob(randomBytes(1000), MediaType.OciLayerGzip)
      await request(`${s.url}/v2/sweep/r/blobs/uploads/?digest=${b.desc.digest}`, 'POST', { body: b.bytes })
      const loc = (await request(`${s.url}/v2/sweep/r/blobs/uploads/`, 'POST')).headers.location!
      const kept = await s.server.runGc({ graceMs: 60_000, uploadTtlMs: 60_000 })
      assert.equal(kept.blobsRemoved.length + kept.contentRemoved.length + kept.uploadsRemoved, 0, 'young blobs and sessions stay')
      const r = await s.server.runGc({ graceMs: 0, uploadTtlMs: 0 })
      assert.deepEqual(
        r.blobsRemoved.map((x) => x.digest),
        [b.desc.digest],
      )
      assert.deepEqual(
        r.contentRemoved.map((x) => x.digest),
        [b.desc.digest],
      )
      assert.equal(r.uploadsRemoved, 1)
      assert.equal((await request(`${s.url}${loc}`, 'GET')).status, 404)
      assert.equal((await request(`${s.url}/v2/sweep/r/blobs/${b.desc.digest}`, 'HEAD')).status, 404)
    } finally {
      await s.stop()
    }
  })

  test('gc with an untagged grace drops untagged manifests no tag keeps, and keeps index children and referrers', async () => {
    const s = await startTestServer()
    const c = new RegistryClient({ registry: s.host, tlsVerify: false })
    try {
      const push = async (img: ReturnType<typeof imageWith>, ref: string): Promise<void> => {
        for (const b of img.blobs) await c.putBlob('untag/r', stream(b.bytes), b.desc)
        await c.putManifest('untag/r', ref, img.manifest)
      }
      const tagged = imageWith([])
      const orphan = imageWith([])
      const child = imageWith([])
      await push(tagged, 'v1')
      await push(orphan, orphan.manifest.digest)
      await push(child, child.manifest.digest)
      const index = rawManifest(
        {
          schemaVersion: 2,
          mediaType: MediaType.OciIndex,
          manifests: [
            {
              mediaType: MediaType.OciManifest,
              digest: child.manifest.digest,
              size: child.manifest.bytes.length,
              platform: { architecture: 'amd64', os: 'linux' },
            },
          ],
        },
        MediaType.OciIndex,
      )
      await c.putManifest('untag/r', 'multi', index)
      const empty = blob(Buffer.from('{}'), MediaType.OciEmpty)
      await c.putBlob('untag/r', stream(empty.bytes), empty.desc)
      const referrer = rawManifest({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: 'application/x.sig',
        config: empty.desc,
        layers: [empty.desc],
        subject: { mediaType: MediaType.OciManifest, digest: tagged.manifest.digest, size: tagged.manifest.bytes.length },
      })
      await c.putManifest('untag/r', referrer.digest, referrer)

      const spared = await s.server.runGc({ graceMs: 0, uploadTtlMs: 60_000, untaggedGraceMs: 60_000 })
      assert.deepEqual(spared.untaggedRemoved, [], 'young untagged manifests stay')
      const r = await s.server.runGc({ graceMs: 0, uploadTtlMs: 60_000, untaggedGraceMs: 0 })
      assert.deepEqual(
        r.untaggedRemoved.map((x) => x.digest),
        [orphan.manifest.digest],
      )
      assert.equal((await request(`${s.url}/v2/untag/r/manifests/${orphan.manifest.digest}`, 'GET')).status, 404)
      assert.equal((await request(`${s.url}/v2/untag/r/blobs/${orphan.blobs[1]!.desc.digest}`, 'HEAD')).status, 404, 'its own layer went with it')
      for (const d of [child.manifest.digest, referrer.digest, tagged.manifest.digest]) {
        assert.equal((await request(`${s.url}/v2/untag/r/manifests/${d}`, 'GET')).status, 200, d)
      }
      await validateAll(s.root, ['untag/r'])
    } finally {
      await c.close()
      await s.stop()
    }
  })

  test('SIGTERM: a request in flight finishes, then the server exits 0', async (t) => {
    const tmp = tempDir(t, { prefix: 'lading-serve-term-' })
    const server = await spawnServer(path.join(tmp, 'root'))
    try {
      const bytes = randomBytes(2 * 1024 * 1024)
      const reply = new Promise<number>((resolve, reject) => {
        const req = http.request(
          `${server.url}/v2/term/r/blobs/uploads/?digest=${digestOf(bytes)}`,
          { method: 'POST', agent: false, headers: { 'Content-Length': bytes.length } },
          (res) => {
            res.resume()
            resolve(res.statusCode!)
          },
        )
        req.on('error', reject)
        req.write(bytes.subarray(0, 1024 * 1024), () => {
          server.child.kill('SIGTERM')
          setTimeout(() => req.end(bytes.subarray(1024 * 1024)), 200)
        })
      })
      assert.equal(await reply, 201)
      assert.equal(await server.stop(), 0)
    } finally {
      await server.stop()
    }
  })
})
