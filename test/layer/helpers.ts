/** Helpers for the layer-writing tests: temp dirs, an independent tar reader, tree comparison, tiny OCI layouts for umoci. */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { promisify } from 'node:util'
import tarStream from 'tar-stream'
import { scanTree } from '../../src/layer/snapshot.js'

export const exec = promisify(execFile)

export async function tmpdir(t: { after: (fn: () => Promise<void>) => void }, name = 'lading-lw-'): Promise<string> {
  const d = await fs.promises.mkdtemp(path.join(os.tmpdir(), name))
  t.after(() => fs.promises.rm(d, { recursive: true, force: true }))
  return d
}

export interface ListedEntry {
  name: string
  type: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  linkname: string | null
  uname: string
  gname: string
  pax: Record<string, string> | null
  data: Buffer
}

/** Read a tar with tar-stream (an implementation independent of ours). */
export async function listTar(tar: Buffer | Readable): Promise<ListedEntry[]> {
  const ex = tarStream.extract()
  const src = Buffer.isBuffer(tar) ? Readable.from([tar]) : tar
  src.pipe(ex)
  const out: ListedEntry[] = []
  for await (const entry of ex) {
    const h = entry.header as tarStream.Header & { pax?: Record<string, string> | null }
    const data = await buffer(entry)
    out.push({
      name: h.name,
      type: h.type ?? '',
      mode: h.mode ?? 0,
      uid: h.uid ?? 0,
      gid: h.gid ?? 0,
      size: h.size ?? 0,
      mtime: h.mtime ? h.mtime.getTime() : 0,
      linkname: h.linkname ?? null,
      uname: h.uname ?? '',
      gname: h.gname ?? '',
      pax: h.pax ?? null,
      data,
    })
  }
  return out
}

export interface TreeEntry {
  type: string
  mode: number
  uid: number
  gid: number
  size: number
  mtimeSec: bigint
  link: string | null
  xattrs: Record<string, string>
  sha256: string | null
}

/** Everything a layer must reproduce about a tree, path by path (directory mtimes left out: extraction order touches them). */
export function treeRecord(root: string, opts: { dirMtimes?: boolean } = {}): Map<string, TreeEntry> {
  const snap = scanTree(root)
  const out = new Map<string, TreeEntry>()
  for (const [rel, e] of snap.entries) {
    if (rel === '') continue
    const x: Record<string, string> = {}
    for (const [k, v] of Object.entries(e.xattrs ?? {})) x[k] = v.toString('hex')
    out.set(rel, {
      type: e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size: e.size,
      mtimeSec: e.type === 'directory' && !opts.dirMtimes ? 0n : e.mtimeNs / 1_000_000_000n,
      link: e.link ?? null,
      xattrs: x,
      sha256:
        e.type === 'file'
          ? createHash('sha256')
              .update(fs.readFileSync(path.join(root, rel)))
              .digest('hex')
          : null,
    })
  }
  return out
}

/** Differences between two tree records, one line each (empty when equal). */
export function diffTrees(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>): string[] {
  const out: string[] = []
  const fmt = (e: TreeEntry): string => JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))
  for (const [p, e] of a) {
    const f = b.get(p)
    if (!f) out.push(`only in first: ${p}`)
    else if (fmt(e) !== fmt(f)) out.push(`${p}: ${fmt(e)} != ${fmt(f)}`)
  }
  for (const p of b.keys()) if (!a.has(p)) out.push(`only in second: ${p}`)
  return out
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

/**
 * A minimal OCI image layout (image-layout.md) holding one image tagged `tag` whose layers are
 * the given blobs, for feeding to umoci. Layers are small (tests), so they are held in memory.
 */
export async function writeLayout(dir: string, tag: string, layers: Array<{ blob: Buffer; tar: Buffer; mediaType: string }>): Promise<void> {
  await fs.promises.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true })
  const put = async (b: Buffer): Promise<string> => {
    const d = sha256(b)
    await fs.promises.writeFile(path.join(dir, 'blobs', 'sha256', d.slice(7)), b)
    return d
  }
  const layerDescs = []
  for (const l of layers) layerDescs.push({ mediaType: l.mediaType, digest: await put(l.blob), size: l.blob.length })
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l.tar)) },
      history: layers.map(() => ({ created: '2020-01-01T00:00:00Z', created_by: 'lading test' })),
    }),
  )
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length },
      layers: layerDescs,
    }),
  )
  const md = await put(manifest)
  await fs.promises.writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  await fs.promises.writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: md,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  )
}
