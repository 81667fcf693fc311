/**
 * Small images built in code for the bundle tests: layers from entry lists (tar-stream's packer,
 * independent of Lading's own tar writer so the two check each other), stored in a fresh layout.
 */
import { spawnSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import zlib from 'node:zlib'
import tarStream from 'tar-stream'
import { digestOf } from '../../src/digest/digest.js'
import { MediaType } from '../../src/spec/media-types.js'
import type { ContainerConfig, Descriptor, ImageConfig, Manifest } from '../../src/spec/types.js'
import { Layout } from '../../src/store/layout.js'
import { writeImage } from '../../src/store/image.js'

export interface Entry {
  name: string
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo'
  body?: string | Buffer
  mode?: number
  uid?: number
  gid?: number
  linkname?: string
  mtime?: Date
  pax?: Record<string, string>
}

const EPOCH = new Date('2024-01-01T00:00:00Z')

export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer)
    })
    pack.on('end', resolve)
    pack.on('error', reject)
  })
  for (const e of entries) {
    const type = e.type ?? 'file'
    const body = e.body === undefined ? undefined : Buffer.isBuffer(e.body) ? e.body : Buffer.from(e.body)
    const header = {
      // tar-stream replaces a mode of 0 by its default; a bit above 0o7777 keeps it truthy and
      // is masked off when the header is encoded.
      name: e.name,
      type,
      mode: e.mode === 0 ? 0o10000 : (e.mode ?? (type === 'directory' ? 0o755 : 0o644)),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? EPOCH,
    } as tarStream.Header
    if (e.linkname !== undefined) header.linkname = e.linkname
    if (e.pax) header.pax = e.pax
    if (type === 'file') header.size = body?.length ?? 0
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve())
      if (type === 'file') pack.entry(header, body ?? Buffer.alloc(0), cb)
      else pack.entry(header, cb)
    })
  }
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

export interface BuiltImage {
  dir: string
  layout: Layout
  tag: string
  manifest: Descriptor
}

/** A layout at `dir` (created) with one image tagged `tag`: gzip layers from the entry lists. */
export async function buildImage(
  dir: string,
  layers: Entry[][],
  config: ContainerConfig = {},
  tag = 'latest',
  extra: Partial<ImageConfig> = {},
): Promise<BuiltImage> {
  const layout = await Layout.init(dir)
  const descs: Descriptor[] = []
  const diffIds = []
  for (const entries of layers) {
    const tar = await tarOf(entries)
    const gz = zlib.gzipSync(tar)
    const put = await layout.putBlob(gz)
    descs.push({ mediaType: MediaType.OciLayerGzip, digest: put.digest, size: put.size })
    diffIds.push(digestOf(tar))
  }
  const imageConfig: ImageConfig = {
    architecture: hostArch(),
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    config,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'test' })),
    ...extra,
  }
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: digestOf('{}'), size: 2 },
    layers: descs,
  }
  const desc = await writeImage(layout, { config: imageConfig, manifest, tag })
  return { dir, layout, tag, manifest: desc }
}

export function hostArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch
}

export async function tempDir(prefix = 'lading-bundle-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix))
}

/** Uncompressed tar layer bytes of a layer blob. */
export async function layerTar(layout: Layout, desc: Descriptor): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of await layout.getBlob(desc)) chunks.push(c as Buffer)
  const b = Buffer.concat(chunks)
  return b[0] === 0x1f && b[1] === 0x8b ? zlib.gunzipSync(b) : b
}

/** Names in a tar, in order. */
export async function tarNames(tar: Buffer): Promise<string[]> {
  const ex = tarStream.extract()
  const names: string[] = []
  ex.on('entry', (h, s, next) => {
    names.push(h.name)
    s.on('end', next)
    s.resume()
  })
  await new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve)
    ex.on('error', reject)
    Readable.from([tar]).pipe(ex)
  })
  return names
}

export function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return r.stdout
}

/** Headers (name, uid, gid, size) and contents of a tar, in order. */
export async function tarEntries(tar: Buffer): Promise<Array<{ name: string; uid: number; gid: number; size: number; body: Buffer }>> {
  const ex = tarStream.extract()
  const out: Array<{ name: string; uid: number; gid: number; size: number; body: Buffer }> = []
  ex.on('entry', (h, s, next) => {
    const chunks: Buffer[] = []
    s.on('data', (c: unknown) => {
      chunks.push(c as Buffer)
    })
    // tar-stream leaves pax uid/gid records in h.pax; they override the ustar fields (POSIX pax).
    const pax = (h.pax ?? {}) as Record<string, string>
    const uid = pax.uid !== undefined ? Number(pax.uid) : (h.uid ?? 0)
    const gid = pax.gid !== undefined ? Number(pax.gid) : (h.gid ?? 0)
    s.on('end', () => {
      out.push({ name: h.name, uid, gid, size: h.size ?? 0, body: Buffer.concat(chunks) })
      next()
    })
  })
  await new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve)
    ex.on('error', reject)
    Readable.from([tar]).pipe(ex)
  })
  return out
}
