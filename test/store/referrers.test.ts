import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { Layout } from '../../src/store/layout.js'
import { MediaType } from '../../src/spec/media-types.js'
import type { Manifest } from '../../src/spec/types.js'
import { putImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

test('listReferrers finds manifests and indexes whose subject is the digest, in distribution-spec form', async (t) => {
  const tmpDir = tempDir(t)
  const layout = await Layout.init(path.join(tmpDir, 'l'))
  const img = await putImage(layout, { layers: 1 })
  const other = await putImage(layout, { layers: 1 })
  const empty = await layout.putBlob(Buffer.from('{}'))
  const sbom: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: 'application/vnd.example.sbom.v1',
    config: { mediaType: MediaType.OciEmpty, digest: empty.digest, size: 2 },
    layers: [],
    subject: img.manifest,
    annotations: { 'org.example.kind': 'sbom' },
  }
  const sbomDesc = await layout.putManifest(Buffer.from(JSON.stringify(sbom)), MediaType.OciManifest)
  // No artifactType: the config media type stands in (distribution-spec §Listing Referrers).
  const { artifactType: _artifactType, annotations: _annotations, ...bare } = sbom
  const sig: Manifest = { ...bare, config: { mediaType: 'application/vnd.example.signature.v1', digest: empty.digest, size: 2 } }
  const sigDesc = await layout.putManifest(Buffer.from(JSON.stringify(sig)), MediaType.OciManifest)
  const idxDesc = await layout.putManifest(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [], subject: img.manifest })),
    MediaType.OciIndex,
  )
  await putImage(layout, { layers: 1, subject: other.manifest })

  const all = await layout.listReferrers(img.manifest.digest)
  const byDigest = new Map(all.map((d) => [d.digest, d]))
  assert.equal(all.length, 3)
  assert.deepEqual(byDigest.get(sbomDesc.digest), {
    mediaType: MediaType.OciManifest,
    digest: sbomDesc.digest,
    size: sbomDesc.size,
    artifactType: 'application/vnd.example.sbom.v1',
    annotations: { 'org.example.kind': 'sbom' },
  })
  assert.equal(byDigest.get(sigDesc.digest)?.artifactType, 'application/vnd.example.signature.v1')
  assert.equal(byDigest.get(idxDesc.digest)?.artifactType, undefined)
  assert.deepEqual(
    (await layout.listReferrers(img.manifest.digest, 'application/vnd.example.sbom.v1')).map((d) => d.digest),
    [sbomDesc.digest],
  )
  assert.equal((await layout.listReferrers(other.manifest.digest)).length, 1)
  assert.deepEqual(await layout.listReferrers(sbomDesc.digest), [])
})
