/**
 * COPY and ADD into a stage's root filesystem. What is copied goes through the layer code: the
 * items become a tar stream (layer/tar-directory's toTarSources, layer/tar-writer) that is applied
 * with layer/apply, which resolves every destination path inside the rootfs (symlinks of the
 * image followed only within it). The step's layer is then the diff of the rootfs, as for RUN.
 * ADD's local archives (tar, optionally gzip, bzip2, xz or zstd compressed) are extracted with the
 * same applyLayer, rooted at the destination directory.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { LadingError } from '../errors.js'
import { decompress } from '../io/compression.js'
import { applyEntries, applyLayer } from '../layer/apply.js'
import { RootResolver } from '../layer/path-safety.js'
import { toTarSources } from '../layer/tar-directory.js'
import { tarEntriesOf, type TarSource } from '../layer/tar-writer.js'
import type { CopyItem } from './sources.js'

/** Ownership and permission overrides (--chown, --chmod). */
export interface CopyAttrs {
  uid?: number
  gid?: number
  mode?: number
  /** Context files are owned by root in the image (Docker): true; stage files keep their owners. */
  rootOwned: boolean
}

/** One source's items placed at `target` (a canonical rootfs-relative path). */
export interface Placement {
  /** Where item rel '' goes; items below are `${target}/${rel}`. */
  target: string
  /** The host directory item paths are relative to, for a directory source. */
  dirRoot?: string
  items: CopyItem[]
  attrs: CopyAttrs
}

/** A file whose content is given (COPY <<EOF) or downloaded (ADD <url>, streamed from its temp file). */
export interface DataFile { target: string; content: { data: Buffer } | { file: string }; size: number; mode: number; uid: number; gid: number; mtimeNs: bigint }

/** Canonical rootfs-relative path of a container path (symlinks followed inside the rootfs). */
export function canonicalPath(rootfs: string, containerPath: string): { rel: string; host: string } {
  const r = new RootResolver(fs.realpathSync(rootfs), { onEscape: 'clamp' }).resolveFull(containerPath, containerPath)
  return { rel: r.rel, host: r.host }
}

/** Does the container path exist in the rootfs as a directory (following symlinks inside it)? */
export function isDirectoryIn(rootfs: string, containerPath: string): boolean {
  try { return fs.statSync(canonicalPath(rootfs, containerPath).host).isDirectory() } catch { return false }
}

function* sourcesOf(p: Placement): Generator<TarSource> {
  const withAttrs = (s: TarSource): TarSource => {
    const e = { ...s.entry }
    if (p.attrs.rootOwned) { e.uid = 0; e.gid = 0 }
    if (p.attrs.uid !== undefined) e.uid = p.attrs.uid
    if (p.attrs.gid !== undefined) e.gid = p.attrs.gid
    if (p.attrs.mode !== undefined && e.type !== 'symlink') e.mode = p.attrs.mode
    return s.content ? { entry: e, content: s.content } : { entry: e }
  }
  if (p.dirRoot !== undefined) {
    for (const s of toTarSources(p.dirRoot, p.items.map((i) => ({ rel: i.rel, entry: i.entry })), p.target)) yield withAttrs(s)
    return
  }
  for (const it of p.items) {
    for (const s of toTarSources(path.dirname(it.host), [{ rel: path.basename(it.host), entry: { ...it.entry, nlink: 1 } }])) {
      yield withAttrs({ ...s, entry: { ...s.entry, path: p.target } })
    }
  }
}

/** Write the placements and data files into the rootfs. */
export async function applyCopy(rootfs: string, placements: Placement[], data: DataFile[], rootless = false): Promise<void> {
  function* all(): Generator<TarSource> {
    for (const p of placements) yield* sourcesOf(p)
    for (const d of data) {
      yield { entry: { path: d.target, type: 'file', mode: d.mode, uid: d.uid, gid: d.gid, size: d.size, mtimeNs: d.mtimeNs }, content: d.content }
    }
  }
  // Straight from the sources to the applier (no tar encoded and parsed back in between): the
  // same entries and checks as a tar of them would give, at a fraction of the cost for many files.
  await applyEntries(rootfs, tarEntriesOf(all(), { subsecondMtimes: true }), { rootless })
}

const MAGIC: Array<[string, number[]]> = [
  ['gzip', [0x1f, 0x8b]], ['zstd', [0x28, 0xb5, 0x2f, 0xfd]], ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]], ['bzip2', [0x42, 0x5a, 0x68]],
]

/**
 * A tar stream of `file` if it is a tar archive (plain or compressed as ADD recognises), else
 * undefined (ADD then copies it as a file). xz and bzip2 are decoded by the `xz` and `bzip2`
 * programs: Node has no decoder for them, and the npm ones are unmaintained or far slower.
 */
export async function openArchive(file: string): Promise<Readable | undefined> {
  const head = Buffer.alloc(512)
  const fd = fs.openSync(file, 'r')
  let n: number
  try { n = fs.readSync(fd, head, 0, 512, 0) } finally { fs.closeSync(fd) }
  const h = head.subarray(0, n)
  const kind = MAGIC.find(([, m]) => m.every((b, i) => h[i] === b))?.[0] ?? 'none'
  if (kind === 'none') return isTarHeader(h) ? fs.createReadStream(file) : undefined
  let stream: Readable
  if (kind === 'gzip' || kind === 'zstd') {
    try { stream = await decompress(fs.createReadStream(file)) } catch { return undefined }
  } else {
    const child = spawn(kind, ['-dc'], { stdio: [fs.openSync(file, 'r'), 'pipe', 'pipe'] })
    let err = ''
    child.stderr!.on('data', (b: Buffer) => { err = (err + b.toString()).slice(-500) })
    const out = child.stdout!
    child.on('error', (e) => out.destroy(new LadingError('UNSUPPORTED', `${file}: cannot run ${kind} to decompress it: ${e.message}`)))
    child.on('close', (code) => { if (code !== 0) out.destroy(new LadingError('INVALID_TAR', `${file}: ${kind} -dc failed (${code}): ${err.trim()}`)) })
    stream = out
  }
  // Docker's rule: what does not decompress to a tar archive (corrupt data too) is copied as a file.
  try {
    const { first, rest } = await peek(stream, 512)
    if (!isTarHeader(first)) { rest.destroy(); return undefined }
    return rest
  } catch {
    stream.destroy()
    return undefined
  }
}

function isTarHeader(h: Uint8Array): boolean {
  return h.length >= 262 && Buffer.from(h.subarray(257, 262)).toString('latin1') === 'ustar'
}

/** The first `n` bytes of a stream, and a stream that replays them and the rest. */
async function peek(r: Readable, n: number): Promise<{ first: Buffer; rest: Readable }> {
  const it = r[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const chunks: Buffer[] = []
  let got = 0
  while (got < n) {
    const x = await it.next()
    if (x.done) break
    chunks.push(x.value)
    got += x.value.length
  }
  const head = Buffer.concat(chunks)
  const rest = Readable.from((async function* () {
    yield head
    while (true) {
      const x = await it.next()
      if (x.done) return
      yield x.value
    }
  })(), { objectMode: false })
  return { first: head.subarray(0, n), rest }
}

/** Extract a tar stream into `containerDir` of the rootfs (created if missing). */
export async function extractInto(rootfs: string, containerDir: string, tar: Readable, rootless = false): Promise<void> {
  const real = fs.realpathSync(rootfs)
  const comps = containerDir.split('/').filter((c) => c !== '' && c !== '.')
  let host = real
  if (comps.length > 0) {
    const r = new RootResolver(real, { onEscape: 'clamp' }).resolveParent(comps, containerDir, 'create')!
    try {
      fs.mkdirSync(r.host, 0o755)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    // resolveParent proved the parents real; the last component must be a directory, not a link.
    if (!fs.lstatSync(r.host).isDirectory()) throw new LadingError('UNSAFE_PATH', `ADD: destination ${containerDir} is not a directory`)
    host = r.host
  }
  await applyLayer(host, tar, { rootless })
}
