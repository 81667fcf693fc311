/**
 * Interoperability with skopeo over a real docker-registry: skopeo reads what Lading pushed
 * (manifest bytes identical, blobs identical, same tags), and Lading reads what skopeo pushed
 * from an OCI layout (manifest and blobs verify and match).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { RegistryClient } from '../../../src/transport/registry/client.js'
import { MediaType } from '../../../src/spec/media-types.js'
import { startRegistry, registryAvailable, type RunningRegistry } from '../../helpers/registry.js'
import { requireTool } from '../../helpers/tools.js'
import { makeImage, stream, type Blob } from '../../fixtures/image.js'
import type { RawManifest } from '../../../src/spec/types.js'
import { buffer } from 'node:stream/consumers'
import { tempDir } from '../../fixtures/temp.js'

const skip = registryAvailable() ? false : process.env.CI === 'true' ? false : 'docker-registry not installed'

/** A valid image: one gzip layer holding one file. */
function tinyImage(): { config: Blob; layer: Blob; manifest: RawManifest } {
  const img = makeImage({ layers: [{ 'hello.txt': 'hello\n' }], platform: { os: 'linux', architecture: 'amd64' } })
  return { config: img.config, layer: img.layers[0]!, manifest: img.manifest }
}

describe('skopeo interop over docker-registry', { skip }, () => {
  let reg: RunningRegistry
  const tmp = tempDir({ after }, { prefix: 'lading-skopeo-' })
  let client: RegistryClient
  before(async () => {
    reg = await startRegistry()
    client = new RegistryClient({ registry: reg.host, tlsVerify: false })
  })
  after(async () => {
    await client?.close()
    await reg?.stop()
  })

  test('skopeo reads what Lading pushed: identical manifest bytes, blobs and tags', async (t) => {
    if (!requireTool(t, 'skopeo')) return
    const img = tinyImage()
    for (const b of [img.config, img.layer]) await client.putBlob('interop/lading', stream(b.bytes), b.desc)
    await client.putManifest('interop/lading', 'v1', img.manifest)
    await client.putManifest('interop/lading', 'v2', img.manifest)
    const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/lading:v1`])
    assert.deepEqual(raw, img.manifest.bytes)
    const tags = JSON.parse(execFileSync('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/interop/lading`], { encoding: 'utf8' }))
    assert.deepEqual([...tags.Tags].sort(), ['v1', 'v2'])
    const out = path.join(tmp, 'dir-out')
    execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/interop/lading:v1`, `dir:${out}`])
    assert.deepEqual(await fsp.readFile(path.join(out, img.layer.desc.digest.slice(7))), img.layer.bytes)
    assert.deepEqual(await fsp.readFile(path.join(out, 'manifest.json')), img.manifest.bytes)
  })

  test('Lading reads what skopeo pushed from an OCI layout', async (t) => {
    if (!requireTool(t, 'skopeo')) return
    const img = tinyImage()
    const layout = path.join(tmp, 'layout')
    await fsp.mkdir(path.join(layout, 'blobs', 'sha256'), { recursive: true })
    await fsp.writeFile(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
    for (const b of [img.config, img.layer]) await fsp.writeFile(path.join(layout, 'blobs', 'sha256', b.desc.digest.slice(7)), b.bytes)
    await fsp.writeFile(path.join(layout, 'blobs', 'sha256', img.manifest.digest.slice(7)), img.manifest.bytes)
    await fsp.writeFile(
      path.join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: MediaType.OciManifest,
            digest: img.manifest.digest,
            size: img.manifest.bytes.length,
            annotations: { 'org.opencontainers.image.ref.name': 'v1' },
          },
        ],
      }),
    )
    execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg.host}/interop/skopeo:v1`])
    const m = await client.getManifest('interop/skopeo', 'v1')
    assert.equal(m.digest, img.manifest.digest)
    assert.deepEqual(m.bytes, img.manifest.bytes)
    assert.deepEqual(await buffer(await client.getBlob('interop/skopeo', img.layer.desc)), img.layer.bytes)
    assert.deepEqual(await client.listTags('interop/skopeo'), ['v1'])
  })
})
