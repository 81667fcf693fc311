/**
 * `lading insert`: a new layer built straight from host files, without unpacking the image
 * (umoci insert). The layer holds SOURCE at TARGET; with `whiteout` it holds only the whiteout
 * `.wh.<name>` for TARGET (image-spec layer.md §Whiteouts: deletes TARGET from the layers
 * below); with `opaque` it starts with TARGET/.wh..wh..opq (layer.md §Opaque Whiteout: hides
 * what lower layers have under TARGET) followed by SOURCE's contents.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { LadingError, isErrno, quoteName } from '../errors.js'
import { WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from '../layer/tar-constants.js'
import { encodeEntryHeader, resolveMtimeClamp, writeTar, type TarEntry } from '../layer/tar-writer.js'
import { tarDirectory } from '../layer/tar-directory.js'
import type { Compression } from '../spec/media-types.js'
import type { Descriptor, History } from '../spec/types.js'
import type { Layout } from '../store/layout.js'
import { appendLayer } from './append-layer.js'
import { resolveImage, selectorParts, type ImageSelector } from '../store/resolve.js'

export interface InsertOptions {
  /** The store the image is in, and which image (a tag or a digest; src/store/resolve.ts). */
  layout: Layout
  image: ImageSelector
  /** Host file or directory to add; omitted with `whiteout`. */
  source?: string
  /** Absolute path in the image. */
  target: string
  whiteout?: boolean
  opaque?: boolean
  compression?: Compression
  level?: number
  /** History entry for the layer; undefined = default ("lading insert ..."); false = none. */
  history?: History | false
  mtimeClamp?: Date
  /** Tag to move (default: the tag of `image`). */
  tag?: string
}

export interface InsertResult {
  manifest: Descriptor
  layer: Descriptor
  historyMismatch?: boolean
}

/**
 * TARGET as a layer path: absolute in the image, normalised, no `..` (a layer path climbing out
 * is refused by every applier; we refuse to write one). The root is `''`: only a directory SOURCE
 * may go there (its contents become the top of the image, as with `umoci insert DIR /`).
 */
export function layerPathOf(target: string): string {
  if (!target.startsWith('/')) throw new LadingError('USAGE', `target ${quoteName(target)}: must be an absolute path in the image`)
  const parts = target.split('/').filter((p) => p !== '' && p !== '.')
  if (parts.some((p) => p === '..')) throw new LadingError('UNSAFE_PATH', `target ${quoteName(target)}: contains ".."`)
  if (parts.some((p) => p.startsWith(WHITEOUT_PREFIX)))
    throw new LadingError('USAGE', `target ${quoteName(target)}: a name starting with ${WHITEOUT_PREFIX} is reserved for whiteouts (layer.md)`)
  return parts.join('/')
}

function nowNs(clamp: bigint | undefined): bigint {
  const now = BigInt(Date.now()) * 1_000_000n
  return clamp !== undefined && clamp < now ? clamp : now
}

/** A header-only entry (whiteout marker): regular file, size 0, root-owned. */
function markerHeader(p: string, mtimeNs: bigint): Buffer {
  const e: TarEntry = { path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeNs }
  return encodeEntryHeader(e)
}

/** The layer tar for an insert (exported for tests). */
export async function insertTar(opts: Pick<InsertOptions, 'source' | 'target' | 'whiteout' | 'opaque' | 'mtimeClamp'>): Promise<Readable> {
  const layerPath = layerPathOf(opts.target)
  const clampNs = resolveMtimeClamp(opts.mtimeClamp)
  const writeOpts = clampNs === undefined ? {} : { mtimeClampNs: clampNs }
  if (opts.whiteout) {
    if (layerPath === '') throw new LadingError('USAGE', '--whiteout: the root directory cannot be deleted')
    if (opts.source !== undefined) throw new LadingError('USAGE', '--whiteout takes only TARGET, no SOURCE')
    if (opts.opaque) throw new LadingError('USAGE', '--whiteout and --opaque exclude each other')
    const dir = path.posix.dirname(layerPath)
    const wh = (dir === '.' ? '' : dir + '/') + WHITEOUT_PREFIX + path.posix.basename(layerPath)
    return writeTar([{ entry: { path: wh, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeNs: nowNs(clampNs) } }], writeOpts)
  }
  if (opts.source === undefined) throw new LadingError('USAGE', 'insert needs SOURCE and TARGET (or --whiteout TARGET)')
  let st
  try {
    st = await fsp.lstat(opts.source)
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw new LadingError('NOT_FOUND', `source ${opts.source}: no such file or directory`, { cause: e })
    throw e
  }
  if (!st.isDirectory() && opts.opaque) throw new LadingError('USAGE', `--opaque needs a directory SOURCE; ${opts.source} is not one`)
  if (!st.isDirectory() && layerPath === '')
    throw new LadingError('USAGE', `target "/": only a directory SOURCE can be inserted at the root; ${opts.source} is not one`)
  // A directory: its entry at TARGET and everything below; anything else: one entry at TARGET.
  const tdOpts: Parameters<typeof tarDirectory>[1] = { prefix: layerPath }
  if (opts.mtimeClamp) tdOpts.mtimeClamp = opts.mtimeClamp
  const body = tarDirectory(opts.source, tdOpts)
  if (!opts.opaque) return body
  // The opaque marker goes first; tarDirectory's entries (its root directory included) follow.
  // layer.md §Opaque Whiteout: the marker hides lower entries only, not this layer's siblings.
  const marker = markerHeader(layerPath === '' ? WHITEOUT_OPAQUE : `${layerPath}/${WHITEOUT_OPAQUE}`, nowNs(clampNs))
  return Readable.from(
    (async function* () {
      yield marker
      yield* body
    })(),
    { objectMode: false },
  )
}

export async function insertIntoImage(opts: InsertOptions): Promise<InsertResult> {
  const image = await resolveImage(opts.layout, opts.image, 'any')
  const tar = await insertTar(opts)
  const tag = opts.tag ?? selectorParts(opts.image).tag
  // The image path only, never the host SOURCE path (see the CLI's insert command).
  const what = opts.whiteout ? `--whiteout ${opts.target}` : `${opts.opaque ? '--opaque ' : ''}${opts.target}`
  const history = opts.history === false ? undefined : (opts.history ?? { created: new Date().toISOString(), created_by: `lading insert ${what}` })
  const appendOpts: Parameters<typeof appendLayer>[3] = { compression: opts.compression ?? 'gzip' }
  if (opts.level !== undefined) appendOpts.level = opts.level
  // The history author defaults to the image's author (as `--history.author` documents).
  if (history) appendOpts.history = history.author === undefined && image.config.author !== undefined ? { ...history, author: image.config.author } : history
  if (tag !== undefined) appendOpts.tag = tag
  const r = await appendLayer(opts.layout, image, tar, appendOpts)
  if (!r.manifest || !r.layer) throw new LadingError('INVALID_TAR', `insert ${what}: produced an empty layer`)
  const out: InsertResult = { manifest: r.manifest, layer: r.layer }
  if (r.historyMismatch) out.historyMismatch = true
  return out
}
