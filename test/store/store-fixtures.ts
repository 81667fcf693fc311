/**
 * Images built in code for the store tests. Layers here are opaque random bytes: the store
 * knows nothing of tar, so its tests need none.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { digestOf } from '../../src/digest/digest.js'
import { Layout } from '../../src/store/layout.js'
import { MediaType } from '../../src/spec/media-types.js'
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from '../../src/spec/types.js'

export async function tempDir(prefix = 'lading-store-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

export interface BuiltImage { manifest: Descriptor; config: Descriptor; layers: Descriptor[] }

/** Store one image (config + manifest + `layers` random layers) without tagging it. */
export async function putImage(layout: Layout, opts: { platform?: Platform; layers?: number; docker?: boolean; subject?: Descriptor; seed?: string } = {}): Promise<BuiltImage> {
  const docker = opts.docker ?? false
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' }
  const layers: Descriptor[] = []
  for (let i = 0; i < (opts.layers ?? 1); i++) {
    const bytes = randomBytes(200 + i)
    const { digest, size } = await layout.putBlob(bytes)
    layers.push({ mediaType: docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip, digest, size })
  }
  const config: ImageConfig = {
    ...platform,
    created: '2024-01-01T00:00:00Z',
    rootfs: { type: 'layers', diff_ids: layers.map(() => digestOf(randomBytes(8))) },
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
