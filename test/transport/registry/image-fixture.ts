/** A small image built in code: random layer blobs, a config, an OCI manifest (all in memory). */
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { digestOf, type Digest } from '../../../src/digest/index.js'
import { MediaType } from '../../../src/spec/media-types.js'
import type { Descriptor, RawManifest } from '../../../src/spec/types.js'

export interface Blob {
  desc: Descriptor
  bytes: Buffer
}
export interface TestImage {
  config: Blob
  layers: Blob[]
  manifest: RawManifest
}

export function blob(bytes: Buffer, mediaType: string): Blob {
  return { bytes, desc: { mediaType, digest: digestOf(bytes), size: bytes.length } }
}

export function rawManifest(doc: unknown, mediaType: string = MediaType.OciManifest): RawManifest {
  const bytes = Buffer.from(JSON.stringify(doc))
  return { bytes, mediaType, digest: digestOf(bytes) }
}

export function makeImage(layerSizes: number[] = [3000, 70_000]): TestImage {
  const layers = layerSizes.map((n) => blob(randomBytes(n), MediaType.OciLayerGzip))
  const config = blob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: layers.map(() => digestOf(randomBytes(8))) },
        created: '2024-01-01T00:00:00Z',
      }),
    ),
    MediaType.OciConfig,
  )
  const manifest = rawManifest({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: config.desc, layers: layers.map((l) => l.desc) })
  return { config, layers, manifest }
}

/** An artifact manifest whose `subject` is `subject` (for referrers). */
export function makeArtifact(subject: Descriptor, artifactType = 'application/vnd.lading.test.sbom'): { manifest: RawManifest; config: Blob; layer: Blob } {
  const config = blob(Buffer.from('{}'), MediaType.OciEmpty)
  const layer = blob(randomBytes(100), 'application/vnd.lading.test.sbom.v1+json')
  const manifest = rawManifest({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType,
    config: config.desc,
    layers: [layer.desc],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { 'org.example.kind': 'sbom' },
  })
  return { manifest, config, layer }
}

export function stream(b: Buffer, chunk = 16 * 1024): Readable {
  let off = 0
  return new Readable({
    read() {
      if (off >= b.length) {
        this.push(null)
        return
      }
      this.push(b.subarray(off, off + chunk))
      off += chunk
    },
  })
}

export async function collect(r: Readable): Promise<Buffer> {
  const out: Buffer[] = []
  for await (const c of r) out.push(c as Buffer)
  return Buffer.concat(out)
}

export function digestsOf(img: TestImage): Digest[] {
  return [img.config.desc.digest, ...img.layers.map((l) => l.desc.digest)]
}
