/**
 * Small test images built in code: a couple of gzip layers, a config with matching diff_ids,
 * an OCI manifest, optionally several platforms under one index, stored in an OCI layout.
 */
import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { digestOf, type Digest } from '../../src/digest/digest.js'
import { Layout } from '../../src/store/layout.js'
import { MediaType } from '../../src/spec/media-types.js'
import type { Descriptor, ImageConfig, Manifest, Platform } from '../../src/spec/types.js'
import { makeTar } from '../helpers/raw-layout.js'

export interface BuiltImage {
  manifest: Descriptor
  config: ImageConfig
  diffIds: Digest[]
  layers: Descriptor[]
}

async function putBytes(layout: Layout, bytes: Buffer, mediaType: string): Promise<Descriptor> {
  const { digest, size } = await layout.putBlob(bytes)
  return { mediaType, digest, size }
}

/** One image; `seed` varies the content; `layerBytes` pads a layer with random data (for big-blob tests). */
export async function buildImage(layout: Layout, opts: { platform?: Platform; seed?: string; layerBytes?: number } = {}): Promise<BuiltImage> {
  const seed = opts.seed ?? 'a'
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' }
  const tars = [
    makeTar({ 'etc/hello.txt': `hello ${seed}\n`, 'bin/tool': `#!/bin/sh\necho ${seed}\n` }),
    makeTar({ 'var/data.bin': opts.layerBytes ? randomBytes(opts.layerBytes) : Buffer.from(`data ${seed}\n`.repeat(50)) }),
  ]
  const diffIds = tars.map((t) => digestOf(t))
  const layers: Descriptor[] = []
  for (const t of tars) layers.push(await putBytes(layout, gzipSync(t), MediaType.OciLayerGzip))
  const config: ImageConfig = {
    created: '2024-01-01T00:00:00Z',
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/tool'], Labels: { seed } },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [{ created_by: 'layer 1' }, { created_by: 'layer 2' }],
  }
  const configDesc = await putBytes(layout, Buffer.from(JSON.stringify(config)), MediaType.OciConfig)
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers }
  const mdesc = await layout.putManifest(Buffer.from(JSON.stringify(manifest)), MediaType.OciManifest)
  return { manifest: mdesc, config, diffIds, layers }
}

/** An image tagged `tag` in a new layout at `dir`. */
export async function buildTaggedImage(dir: string, tag: string, opts: Parameters<typeof buildImage>[1] = {}): Promise<BuiltImage> {
  const layout = await Layout.init(dir)
  const img = await buildImage(layout, opts)
  await layout.setTag(tag, img.manifest)
  return img
}

/** A two-platform OCI index (linux/amd64, linux/arm64) tagged `tag`. */
export async function buildMultiPlatform(dir: string, tag: string): Promise<{ index: Descriptor; images: BuiltImage[] }> {
  const layout = await Layout.init(dir)
  const platforms: Platform[] = [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ]
  const images: BuiltImage[] = []
  for (const p of platforms) images.push(await buildImage(layout, { platform: p, seed: p.architecture }))
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: images.map((im, i) => ({ ...im.manifest, platform: platforms[i]! })),
  }
  const desc = await layout.putManifest(Buffer.from(JSON.stringify(index)), MediaType.OciIndex)
  await layout.setTag(tag, desc)
  return { index: desc, images }
}

/** An artifact manifest whose subject is `subject`, listed untagged in index.json (as oras does). */
export async function addReferrer(layout: Layout, subject: Descriptor): Promise<Descriptor> {
  const blob = await putBytes(layout, Buffer.from('{"sbom":true}'), 'application/spdx+json')
  const empty = await putBytes(layout, Buffer.from('{}'), MediaType.OciEmpty)
  const m = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: 'application/spdx+json',
    config: empty,
    layers: [blob],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  }
  const desc = await layout.putManifest(Buffer.from(JSON.stringify(m)), MediaType.OciManifest)
  await layout.updateIndex((idx) => ({ ...idx, manifests: [...idx.manifests, { ...desc, annotations: { 'org.example': 'sbom' } }] }))
  return desc
}
