/**
 * Real clients against `lading serve` (the command, in a child process): skopeo and `lading
 * copy` push and pull the Debian fixture images (OCI and Docker formats, zstd layers, a
 * multi-platform index, a referrer), and what comes back is byte-identical to what went in.
 * `lading copy --all` from a docker-registry into Lading's server and back keeps every digest.
 */
import assert from 'node:assert/strict'
import { existsSync, promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { digestOf } from '../../src/digest/index.js'
import { MediaType } from '../../src/spec/media-types.js'
import { Layout } from '../../src/store/layout.js'
import { ladingOk, runOk } from '../helpers/cli.js'
import { debianFixtures } from '../fixtures/debian.js'
import { tempDir } from '../fixtures/temp.js'
import { request, spawnServer, type ChildServer } from '../helpers/lading-server.js'
import { registryMissing, startRegistry } from '../helpers/registry.js'
import { requireTool } from '../helpers/tools.js'

const FIXTURE_TAGS = ['minbase', 'layered', 'minbase-zstd']

function skopeoRaw(ref: string): Buffer {
  return runOk('skopeo', ['inspect', '--raw', '--tls-verify=false', ref]).stdoutBytes
}

/** Every blob file of a layout that `digests` name is byte-identical to the fixture's. */
async function sameBlobs(a: string, b: string, digests: string[]): Promise<void> {
  for (const d of digests) {
    const [alg, hex] = d.split(':')
    const x = await fsp.readFile(path.join(a, 'blobs', alg!, hex!))
    const y = await fsp.readFile(path.join(b, 'blobs', alg!, hex!))
    assert.ok(x.equals(y), `blob ${d} differs`)
  }
}

function blobsOf(manifest: Buffer): string[] {
  const m = JSON.parse(manifest.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> }
  return [m.config.digest, ...m.layers.map((l) => l.digest)]
}

describe('lading serve with real clients', () => {
  let server: ChildServer | undefined
  // Registered first, so that the server stops before the directory under it goes (hooks run in order).
  after(async () => {
    await server?.stop()
  })
  const tmp = tempDir({ after }, { prefix: 'lading-serve-interop-', ...(existsSync('/dev/shm') ? { base: '/dev/shm' } : {}) })
  before(async () => {
    server = await spawnServer(path.join(tmp, 'root'))
  })

  test('skopeo pushes and pulls the Debian images byte-identical (OCI, zstd, Docker v2s2)', async (t) => {
    const fx = debianFixtures(t)
    if (!fx || !requireTool(t, 'skopeo')) return
    const src = await Layout.open(fx.layout)
    for (const tag of ['minbase', 'minbase-zstd']) {
      const desc = await src.resolveTag(tag)
      const manifest = await src.readBlob(desc)
      const ref = `docker://${server!.host}/skopeo/debian:${tag}`
      runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${fx.layout}:${tag}`, ref])
      assert.ok(skopeoRaw(ref).equals(manifest), `${tag}: the registry serves the manifest bytes skopeo pushed`)
      const out = path.join(tmp, `skopeo-out-${tag}`)
      runOk('skopeo', ['copy', '--quiet', '--src-tls-verify=false', ref, `oci:${out}:${tag}`])
      await sameBlobs(fx.layout, out, [desc.digest, ...blobsOf(manifest)])
      ladingOk(['validate', '--layout', path.join(server!.root, 'skopeo', 'debian')])
    }
    // Docker v2s2, as skopeo converts and pushes it; pulled back to dir: byte for byte.
    const docker = `docker://${server!.host}/skopeo/docker:v1`
    runOk('skopeo', ['copy', '--quiet', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${fx.layout}:minbase`, docker])
    const served = skopeoRaw(docker)
    assert.equal((JSON.parse(served.toString()) as { mediaType: string }).mediaType, MediaType.DockerManifest)
    const dir = path.join(tmp, 'skopeo-docker-dir')
    runOk('skopeo', ['copy', '--quiet', '--src-tls-verify=false', docker, `dir:${dir}`])
    assert.ok((await fsp.readFile(path.join(dir, 'manifest.json'))).equals(served))
    for (const d of blobsOf(served)) {
      const got = await fsp.readFile(path.join(dir, d.slice(7)))
      assert.equal(digestOf(got), d)
    }
  })

  test('lading copy pushes and pulls every fixture tag, OCI and converted to Docker v2s2, keeping digests', async (t) => {
    const fx = debianFixtures(t)
    if (!fx) return
    const src = await Layout.open(fx.layout)
    for (const tag of FIXTURE_TAGS) {
      const desc = await src.resolveTag(tag)
      const ref = `docker://${server!.host}/lading/debian:${tag}`
      ladingOk(['copy', '--quiet', '--dest-tls-verify=false', `oci:${fx.layout}:${tag}`, ref])
      const out = path.join(tmp, 'lading-out')
      ladingOk(['copy', '--quiet', '--src-tls-verify=false', ref, `oci:${out}:${tag}`])
      const back = await (await Layout.open(out)).resolveTag(tag)
      assert.equal(back.digest, desc.digest, `${tag}: same manifest digest after a round trip`)
      await sameBlobs(fx.layout, out, [desc.digest, ...blobsOf(await src.readBlob(desc))])
    }
    const v2 = `docker://${server!.host}/lading/debian-v2s2:minbase`
    ladingOk(['copy', '--quiet', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${fx.layout}:minbase`, v2])
    const raw = JSON.parse(ladingOk(['inspect', '--raw', '--tls-verify=false', v2]).stdout) as { mediaType: string }
    assert.equal(raw.mediaType, MediaType.DockerManifest)
    const out = path.join(tmp, 'v2s2-out')
    ladingOk(['copy', '--quiet', '--src-tls-verify=false', '--preserve-digests', v2, `dir:${out}`])
    const pushedDigest = ladingOk(['manifest-digest', path.join(out, 'manifest.json')]).stdout.trim()
    assert.equal(pushedDigest, digestOf(Buffer.from(ladingOk(['inspect', '--raw', '--tls-verify=false', v2]).stdoutBytes)))
    ladingOk(['validate', '--layout', path.join(server!.root, 'lading', 'debian')])
    ladingOk(['validate', '--layout', path.join(server!.root, 'lading', 'debian-v2s2')])
  })

  test('a multi-platform index and a referrer go through skopeo --all and lading copy --referrers', async (t) => {
    const fx = debianFixtures(t)
    if (!fx || !requireTool(t, 'skopeo')) return
    // A layout with an index over two of the fixture images, and an SBOM-like referrer of it.
    const multi = path.join(tmp, 'multi')
    runOk('cp', ['-a', fx.layout, multi])
    const layout = await Layout.open(multi)
    const a = await layout.resolveTag('minbase')
    const b = await layout.resolveTag('minbase-zstd')
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          { mediaType: a.mediaType, digest: a.digest, size: a.size, platform: { architecture: 'amd64', os: 'linux' } },
          { mediaType: b.mediaType, digest: b.digest, size: b.size, platform: { architecture: 'amd64', os: 'linux', variant: 'zstd' } },
        ],
      }),
    )
    const indexDesc = await layout.putManifest(index, MediaType.OciIndex)
    await layout.setTag('multi', indexDesc)
    const empty = await layout.putBlob(Buffer.from('{}'))
    const sbom = await layout.putBlob(Buffer.from('{"sbom":true}'))
    const artifact = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: 'application/vnd.example.sbom',
        config: { mediaType: MediaType.OciEmpty, digest: empty.digest, size: empty.size },
        layers: [{ mediaType: 'application/vnd.example.sbom+json', digest: sbom.digest, size: sbom.size }],
        subject: { mediaType: MediaType.OciIndex, digest: indexDesc.digest, size: indexDesc.size },
      }),
    )
    const artDesc = await layout.putManifest(artifact, MediaType.OciManifest)
    await layout.setTag('sbom', artDesc)

    const ref = `docker://${server!.host}/multi/debian:v1`
    ladingOk(['copy', '--quiet', '--all', '--referrers', '--dest-tls-verify=false', `oci:${multi}:multi`, ref])
    assert.ok(skopeoRaw(ref).equals(index), 'the index bytes are served as pushed')
    const refs = JSON.parse((await request(`http://${server!.host}/v2/multi/debian/referrers/${indexDesc.digest}`, 'GET')).body.toString()) as {
      manifests: Array<{ digest: string; artifactType: string }>
    }
    assert.deepEqual(
      refs.manifests.map((m) => [m.digest, m.artifactType]),
      [[artDesc.digest, 'application/vnd.example.sbom']],
    )

    const out = path.join(tmp, 'multi-out')
    runOk('skopeo', ['copy', '--quiet', '--all', '--src-tls-verify=false', ref, `oci:${out}:v1`])
    const back = await (await Layout.open(out)).resolveTag('v1')
    assert.equal(back.digest, indexDesc.digest)
    await sameBlobs(multi, out, [indexDesc.digest, a.digest, b.digest])
    const skopeoPushed = `docker://${server!.host}/multi/skopeo:v1`
    runOk('skopeo', ['copy', '--quiet', '--all', '--dest-tls-verify=false', `oci:${multi}:multi`, skopeoPushed])
    assert.equal(digestOf(skopeoRaw(skopeoPushed)), indexDesc.digest)
    ladingOk(['validate', '--layout', path.join(server!.root, 'multi', 'debian')])
  })

  test('lading copy --all from docker-registry into lading serve and back keeps every digest', async (t) => {
    const fx = debianFixtures(t)
    const missing = registryMissing()
    if (missing) {
      t.skip(missing)
      return
    }
    if (!fx || !requireTool(t, 'skopeo')) return
    const reg = await startRegistry()
    try {
      const src = await Layout.open(fx.layout)
      const want = await src.resolveTag('layered')
      ladingOk(['copy', '--quiet', '--dest-tls-verify=false', `oci:${fx.layout}:layered`, `docker://${reg.host}/from/dist:v1`])
      // distribution -> lading serve -> distribution
      const hops = [`docker://${reg.host}/from/dist:v1`, `docker://${server!.host}/via/lading:v1`, `docker://${reg.host}/back/dist:v1`]
      for (let i = 1; i < hops.length; i++) {
        ladingOk(['copy', '--quiet', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', hops[i - 1]!, hops[i]!])
      }
      for (const ref of [`docker://${server!.host}/via/lading:v1`, `docker://${reg.host}/back/dist:v1`]) {
        assert.equal(digestOf(skopeoRaw(ref)), want.digest, ref)
      }
    } finally {
      await reg.stop()
    }
  })
})
