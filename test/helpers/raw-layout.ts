/**
 * Builds OCI image layouts for tests with raw fs writes (no Lading store code), so that tests of
 * the validator and readers do not depend on the code they check. Everything it writes is
 * spec-conformant unless a test changes it afterwards: blobs at blobs/sha256/<hex>, the
 * `oci-layout` marker, and an index.json whose entries carry ref.name tags.
 */
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { ownedTempDir, type OwnedTempDir } from '../fixtures/owned-temp-dir.js'

export interface RawDescriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
  platform?: { os: string; architecture: string; variant?: string }
  [k: string]: unknown
}

export interface RawImage {
  manifest: Record<string, any>
  manifestDescriptor: RawDescriptor
  config: Record<string, any>
  configDescriptor: RawDescriptor
  layers: RawDescriptor[]
  diffIds: string[]
}

export function sha256(data: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex')
}

/** A ustar archive (no compression) of regular files, built in code. */
export function makeTar(files: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = []
  for (const [name, content] of Object.entries(files)) {
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content)
    const h = Buffer.alloc(512)
    h.write(name, 0, 100, 'utf8')
    h.write('0000644\0', 100)
    h.write('0000000\0', 108)
    h.write('0000000\0', 116)
    h.write(body.length.toString(8).padStart(11, '0') + '\0', 124)
    h.write('14000000000\0', 136) // mtime: 2015, fixed so builds are reproducible
    h.write('        ', 148)
    h.write('0', 156)
    h.write('ustar\0', 257)
    h.write('00', 263)
    let sum = 0
    for (const b of h) sum += b
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
    parts.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

export class RawLayout {
  readonly dir: string
  readonly #tmp: OwnedTempDir
  #index: { schemaVersion: 2; mediaType: string; manifests: RawDescriptor[] } = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [],
  }

  private constructor(tmp: OwnedTempDir) {
    this.#tmp = tmp
    this.dir = tmp.dir
  }

  /**
   * A fresh layout in a new temp directory (oci-layout, empty index.json, blobs/sha256), removed
   * by cleanup(): callers build it in before hooks and in suites that hold no TestContext.
   */
  static async create(prefix = 'lading-raw-'): Promise<RawLayout> {
    const l = new RawLayout(ownedTempDir({ prefix }))
    const dir = l.dir
    await fsp.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true })
    await fsp.writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
    await l.writeIndex()
    return l
  }

  blobPath(digest: string): string {
    const [alg, hex] = digest.split(':') as [string, string]
    return path.join(this.dir, 'blobs', alg, hex)
  }

  async writeBlob(data: Uint8Array | string, mediaType = 'application/octet-stream', alg: 'sha256' | 'sha512' = 'sha256'): Promise<RawDescriptor> {
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data)
    const digest = `${alg}:${createHash(alg).update(buf).digest('hex')}`
    await fsp.mkdir(path.join(this.dir, 'blobs', alg), { recursive: true })
    await fsp.writeFile(this.blobPath(digest), buf)
    return { mediaType, digest, size: buf.length }
  }

  async writeJson(value: unknown, mediaType: string): Promise<RawDescriptor> {
    return this.writeBlob(JSON.stringify(value), mediaType)
  }

  get index(): { schemaVersion: 2; mediaType: string; manifests: RawDescriptor[] } {
    return this.#index
  }

  /** Write index.json: the tracked index, or exactly `raw` (any bytes) when given. */
  async writeIndex(raw?: string | Buffer): Promise<void> {
    await fsp.writeFile(path.join(this.dir, 'index.json'), raw ?? JSON.stringify(this.#index))
  }

  /** Add a descriptor to index.json, tagged when `tag` is given. */
  async addToIndex(desc: RawDescriptor, tag?: string): Promise<void> {
    const d: RawDescriptor = { ...desc }
    if (tag !== undefined) d.annotations = { ...(d.annotations ?? {}), 'org.opencontainers.image.ref.name': tag }
    this.#index.manifests.push(d)
    await this.writeIndex()
  }

  /**
   * A small runnable-shaped image: `layers` gzip layers (each a tar with one file), an OCI
   * config with matching diff_ids and history, a manifest; tagged `tag` in index.json.
   */
  async addImage(opts: { tag?: string; layers?: number; architecture?: string; os?: string; gzip?: boolean; seed?: string } = {}): Promise<RawImage> {
    const n = opts.layers ?? 1
    const gzip = opts.gzip ?? true
    const layers: RawDescriptor[] = []
    const diffIds: string[] = []
    for (let i = 0; i < n; i++) {
      const tar = makeTar({ [`file-${i}.txt`]: `layer ${i} of ${opts.seed ?? opts.tag ?? 'image'}\n` })
      diffIds.push(sha256(tar))
      layers.push(
        await this.writeBlob(gzip ? gzipSync(tar) : tar, gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar'),
      )
    }
    const config = {
      created: '2024-01-02T03:04:05Z',
      architecture: opts.architecture ?? 'amd64',
      os: opts.os ?? 'linux',
      config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'], ExposedPorts: { '80/tcp': {} }, Labels: { a: 'b' } },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: layers.map((_, i) => ({ created: '2024-01-02T03:04:05Z', created_by: `step ${i}` })),
    }
    const configDescriptor = await this.writeJson(config, 'application/vnd.oci.image.config.v1+json')
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: configDescriptor,
      layers,
    }
    const manifestDescriptor = await this.writeJson(manifest, 'application/vnd.oci.image.manifest.v1+json')
    if (opts.tag !== undefined) await this.addToIndex(manifestDescriptor, opts.tag)
    return { manifest, manifestDescriptor, config, configDescriptor, layers, diffIds }
  }

  /** Replace a stored JSON document by an edited copy; returns the new descriptor (new digest). */
  async rewriteJson(desc: RawDescriptor, edit: (v: any) => unknown): Promise<RawDescriptor> {
    const v = JSON.parse(await fsp.readFile(this.blobPath(desc.digest), 'utf8')) as unknown
    return this.writeJson(edit(v) ?? v, desc.mediaType)
  }

  async cleanup(): Promise<void> {
    await this.#tmp.remove()
  }
}
