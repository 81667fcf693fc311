/**
 * Images built in code for the store tests. Layers here are opaque random bytes: the store
 * knows nothing of tar, so its tests need none.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { digestOf, type Digest } from '../../src/digest/digest.js'
import { Layout } from '../../src/store/layout.js'
import { MediaType } from '../../src/spec/media-types.js'
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from '../../src/spec/types.js'

export async function tempDir(prefix = 'lading-store-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

export interface BuiltImage {
  manifest: Descriptor
  config: Descriptor
  layers: Descriptor[]
}

/** Store one image (config + manifest + `layers` random layers) without tagging it. */
export async function putImage(
  layout: Layout,
  opts: { platform?: Platform; layers?: number; docker?: boolean; subject?: Descriptor; seed?: string } = {},
): Promise<BuiltImage> {
  const docker = opts.docker ?? false
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' }
  const layers: Descriptor[] = []
  const diffIds: Digest[] = []
  for (let i = 0; i < (opts.layers ?? 1); i++) {
    // A real layer (validate checks compression and diff_ids): one random file, tar, gzip.
    const tar = tarOneFile(`file-${i}`, randomBytes(200 + i))
    diffIds.push(digestOf(tar))
    const { digest, size } = await layout.putBlob(gzipSync(tar))
    layers.push({ mediaType: docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip, digest, size })
  }
  const config: ImageConfig = {
    ...platform,
    created: '2024-01-01T00:00:00Z',
    rootfs: { type: 'layers', diff_ids: diffIds },
    config: { Env: [`SEED=${opts.seed ?? randomBytes(4).toString('hex')}`] },
  }
  const configBytes = Buffer.from(JSON.stringify(config))
  const c = await layout.putBlob(configBytes)
  const configDesc: Descriptor = { mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: c.digest, size: c.size }
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
    config: configDesc,
    layers,
    ...(opts.subject ? { subject: opts.subject } : {}),
  }
  const m = await layout.putManifest(Buffer.from(JSON.stringify(manifest)), manifest.mediaType!)
  return { manifest: m, config: configDesc, layers }
}

/** Store an index (or Docker manifest list) over `entries`. */
export async function putIndex(layout: Layout, entries: Descriptor[], docker = false): Promise<Descriptor> {
  const mediaType = docker ? MediaType.DockerManifestList : MediaType.OciIndex
  const index: Index = { schemaVersion: 2, mediaType, manifests: entries }
  return layout.putManifest(Buffer.from(JSON.stringify(index)), mediaType)
}

export function withPlatform(d: Descriptor, p: Platform): Descriptor {
  return { ...d, platform: p }
}

/** A ustar archive holding one regular file (enough of a layer for the store's tests). */
export function tarOneFile(name: string, content: Buffer): Buffer {
  const h = Buffer.alloc(512)
  h.write(name, 0, 100, 'utf8')
  h.write('0000644\0', 100)
  h.write('0000000\0', 108)
  h.write('0000000\0', 116)
  h.write(content.length.toString(8).padStart(11, '0') + '\0', 124)
  h.write('00000000000\0', 136)
  h.write('        ', 148)
  h.write('0', 156)
  h.write('ustar\0', 257)
  h.write('00', 263)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512)
  return Buffer.concat([h, content, pad, Buffer.alloc(1024)])
}
