/**
 * Image -> runtime bundle (runtime-spec bundle.md): BUNDLE/rootfs from the layers applied in
 * order (image-spec layer.md §Applying Changesets), BUNDLE/config.json from the image config
 * (image-spec conversion.md, see runtime-config.ts), and BUNDLE/lading.json + lading.snapshot,
 * the state `lading repack` diffs against.
 *
 * Contract: all or nothing. The bundle directory must be absent or empty; on any failure
 * everything this call created is removed again (the directory itself too if we made it).
 * Each layer is streamed blob -> verify (size + digest, in getBlob) -> decompress -> apply:
 * decompression runs on libuv's thread pool while the main thread writes files, so the two
 * overlap; no layer is held in memory.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { pipeline as pipelineCb, type Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { verifiedStream } from '../digest/verify.js'
import { LadingError, quoteName } from '../errors.js'
import { atomicWriteFile } from '../io/fs.js'
import { decompress } from '../io/compression.js'
import { ProgressStream, type ProgressCallback } from '../io/progress.js'
import { applyLayer, type ApplyStats, type IdMapping, type WhiteoutStrategy } from '../layer/apply.js'
import { saveSnapshot, takeSnapshot, type Snapshot } from '../layer/snapshot.js'
import { layerInfo } from '../spec/media-types.js'
import type { Platform } from '../spec/types.js'
import type { Layout } from '../store/layout.js'
import { resolveImage, selectorParts, type ImageSelector, type ResolvedImage } from '../store/resolve.js'
import { isEmptyOrAbsent, removeTree } from './cleanup.js'
import { rootFileReader } from './root-file.js'
import { openUpDirs, restoreDirs, withOriginalModes } from './rootless-access.js'
import { runtimeConfig } from './runtime-config.js'
import type { RuntimeSpec } from './runtime-types.js'
import { CONFIG_FILE, ROOTFS_DIR, SNAPSHOT_FILE, writeBundleState, type BundleState } from './state.js'

export interface UnpackOptions {
  /** The store the image is in (a bundle records its directory, for repack). */
  layout: Layout
  /** Which image: a tag or a digest (src/store/resolve.ts ImageSelector). */
  image: ImageSelector
  platform?: Platform | 'any'
  rootless?: boolean
  uidMap?: IdMapping[]
  gidMap?: IdMapping[]
  /** Keep symlinks to directories that a layer's directory entry would replace (umoci --keep-dirlinks). */
  keepDirlinks?: boolean
  /** Cap on the bytes extracted (passed to applyLayer). */
  maxBytes?: number
  onWarning?: (msg: string) => void
  /** Aborting stops the unpack at once; what it made is removed as for any failure. */
  signal?: AbortSignal
  /**
   * Also check each uncompressed layer against the config's rootfs.diff_ids (config.md §rootfs).
   * Off by default: the compressed blob is always verified against the manifest (which is what
   * protects the rootfs); this adds a SHA-256 pass over the uncompressed bytes on the main thread.
   */
  verifyDiffIds?: boolean
  /** Progress of each layer (action 'unpack', bytes of the stored blob read); none when absent. */
  onProgress?: ProgressCallback
}

export interface UnpackResult {
  image: ResolvedImage
  layers: number
  stats: ApplyStats
}

/**
 * Apply the image's layers, in manifest order, to `rootfs` (which must exist). Layer media types
 * are checked: a non-layer blob (an artifact) is refused rather than fed to the tar reader.
 */
export async function applyImageLayers(
  image: ResolvedImage,
  rootfs: string,
  opts: Omit<UnpackOptions, 'layout' | 'image' | 'platform'> = {},
): Promise<ApplyStats> {
  const total: ApplyStats = { entries: 0, bytes: 0, whiteouts: 0 }
  for (let i = 0; i < image.manifest.layers.length; i++) {
    const layerOpts = opts.maxBytes !== undefined ? { ...opts, maxBytes: opts.maxBytes - total.bytes } : opts
    const stats = await applyImageLayer(image, i, rootfs, layerOpts)
    total.entries += stats.entries
    total.bytes += stats.bytes
    total.whiteouts += stats.whiteouts
  }
  return total
}

/**
 * Apply layer `i` of the image to `rootfs`: blob -> verify -> decompress -> (diff_id check) ->
 * applyLayer. `whiteouts` chooses how its whiteouts are carried out (layer/apply.ts): the local
 * store unpacks each layer alone, with overlayfs markers.
 */
export async function applyImageLayer(
  image: ResolvedImage,
  i: number,
  rootfs: string,
  opts: Omit<UnpackOptions, 'layout' | 'image' | 'platform'> & { whiteouts?: WhiteoutStrategy } = {},
): Promise<ApplyStats> {
  const desc = image.manifest.layers[i]!
  const info = layerInfo(desc.mediaType)
  const name = `layer ${i} (${desc.digest})`
  if (!info) throw new LadingError('UNSUPPORTED', `${name}: media type ${quoteName(desc.mediaType)} is not a filesystem layer`)
  const blob = await image.blobs.get(desc)
  const progress = opts.onProgress
  progress?.({ type: 'blob-start', digest: desc.digest, size: desc.size, mediaType: desc.mediaType, action: 'unpack' })
  // Counted only when someone listens: a pipe or --progress none costs nothing.
  const counted: Readable = progress
    ? pipelineCb(blob, new ProgressStream((bytes) => progress({ type: 'blob-progress', digest: desc.digest, bytes, size: desc.size })), () => {})
    : blob
  let tar: Readable
  try {
    tar = await decompress(counted, info.compression, name)
  } catch (e) {
    blob.destroy()
    throw e
  }
  if (opts.verifyDiffIds) {
    const diffId = image.config.rootfs?.diff_ids?.[i]
    if (diffId === undefined) throw new LadingError('INVALID_CONFIG', `${name}: the config has no rootfs.diff_ids entry for it`)
    tar = verifiedStream(tar, { digest: diffId, name: `${name} uncompressed (diff_id)` })
  }
  const applyOpts: Parameters<typeof applyLayer>[2] = {}
  if (opts.rootless !== undefined) applyOpts.rootless = opts.rootless
  if (opts.uidMap) applyOpts.uidMap = opts.uidMap
  if (opts.gidMap) applyOpts.gidMap = opts.gidMap
  if (opts.keepDirlinks) applyOpts.keepDirlinks = true
  if (opts.maxBytes !== undefined) applyOpts.maxBytes = opts.maxBytes
  if (opts.onWarning) applyOpts.onWarning = opts.onWarning
  if (opts.whiteouts) applyOpts.whiteouts = opts.whiteouts
  const stop = (): void => {
    tar.destroy(interrupted())
  }
  opts.signal?.addEventListener('abort', stop, { once: true })
  let stats: ApplyStats
  try {
    if (opts.signal?.aborted) throw interrupted()
    stats = await applyLayer(rootfs, tar, applyOpts)
    // Read what follows the end-of-archive blocks too: the blob's size and digest are checked
    // when it ends, and a mismatch must fail the unpack even if the tar looked complete.
    await drain(tar)
  } catch (e) {
    blob.destroy()
    tar.destroy()
    if (opts.signal?.aborted) throw interrupted()
    if (e instanceof LadingError && !e.message.includes(desc.digest)) {
      throw new LadingError(e.code, `${name}: ${e.message}`, { cause: e })
    }
    throw e
  } finally {
    opts.signal?.removeEventListener('abort', stop)
  }
  progress?.({ type: 'blob-done', digest: desc.digest, size: desc.size, stored: { digest: desc.digest, size: desc.size, mediaType: desc.mediaType } })
  return stats
}

function interrupted(): LadingError {
  return new LadingError('CONFLICT', 'interrupted')
}

/** Consume a readable to its end; rejects on its error (e.g. the blob's digest mismatch). */
async function drain(r: Readable): Promise<void> {
  if (r.readableEnded) return
  r.resume()
  await finished(r)
}

/** Write `config.json` for `image` into `dir`, reading users from `rootfs` if given. */
export async function writeRuntimeConfig(
  image: ResolvedImage,
  file: string,
  opts: { rootfs?: string; rootless?: boolean; uidMap?: IdMapping[]; gidMap?: IdMapping[] } = {},
): Promise<RuntimeSpec> {
  const cfgOpts: Parameters<typeof runtimeConfig>[1] = { rootless: opts.rootless ?? false }
  if (opts.rootfs !== undefined) cfgOpts.readRootFile = rootFileReader(opts.rootfs)
  if (opts.uidMap) cfgOpts.uidMap = opts.uidMap
  if (opts.gidMap) cfgOpts.gidMap = opts.gidMap
  const spec = await runtimeConfig(image.config, cfgOpts)
  await atomicWriteFile(file, JSON.stringify(spec, null, '\t') + '\n', 0o644)
  return spec
}

/** The snapshot repack diffs against; a rootless tree's unreadable directories are opened meanwhile. */
async function snapshotOf(rootfs: string, rootless: boolean): Promise<Snapshot> {
  if (!rootless) return takeSnapshot(rootfs)
  const opened = await openUpDirs(rootfs)
  try {
    return withOriginalModes(await takeSnapshot(rootfs), opened)
  } finally {
    await restoreDirs(opened)
  }
}

/**
 * Do `fn` inside `dir`, which must be absent or empty; on failure remove what was made
 * (the directory too when this call created it).
 */
async function intoFreshDir<T>(dir: string, what: string, fn: (created: string[]) => Promise<T>): Promise<T> {
  let st
  try {
    st = await fsp.lstat(dir)
  } catch {
    st = undefined
  }
  if (st && !st.isDirectory()) throw new LadingError('EXISTS', `${what} ${dir}: exists and is not a directory`)
  if (!(await isEmptyOrAbsent(dir))) throw new LadingError('EXISTS', `${what} ${dir}: directory is not empty (refusing to unpack over existing files)`)
  const madeDir = st === undefined
  if (madeDir) await fsp.mkdir(dir, { recursive: true, mode: 0o755 })
  const created: string[] = []
  try {
    return await fn(created)
  } catch (e) {
    if (madeDir) await removeTree(dir).catch(() => {})
    else for (const p of created.reverse()) await removeTree(p).catch(() => {})
    throw e
  }
}

/** `lading unpack`: image -> BUNDLE/{rootfs,config.json,lading.json,lading.snapshot}. */
export async function unpackBundle(bundle: string, opts: UnpackOptions): Promise<UnpackResult> {
  const dir = path.resolve(bundle)
  const image = await resolveImage(opts.layout, opts.image, opts.platform)
  return intoFreshDir(dir, 'bundle', async (created) => {
    const rootfs = path.join(dir, ROOTFS_DIR)
    created.push(rootfs)
    await fsp.mkdir(rootfs, { mode: 0o755 })
    const stats = await applyImageLayers(image, rootfs, opts)

    if (opts.signal?.aborted) throw interrupted()
    const configFile = path.join(dir, CONFIG_FILE)
    created.push(configFile)
    const cfg: Parameters<typeof writeRuntimeConfig>[2] = { rootfs, rootless: opts.rootless ?? false }
    if (opts.uidMap) cfg.uidMap = opts.uidMap
    if (opts.gidMap) cfg.gidMap = opts.gidMap
    await writeRuntimeConfig(image, configFile, cfg)

    const snapFile = path.join(dir, SNAPSHOT_FILE)
    created.push(snapFile)
    await saveSnapshot(await snapshotOf(rootfs, opts.rootless ?? false), snapFile)

    if (opts.signal?.aborted) throw interrupted()
    const m = image.manifestDescriptor
    const state: BundleState = {
      version: 1,
      layout: path.resolve(opts.layout.dir),
      manifest: { mediaType: m.mediaType, digest: m.digest, size: m.size },
      platform: { architecture: image.config.architecture, os: image.config.os, ...(image.config.variant ? { variant: image.config.variant } : {}) },
      snapshot: SNAPSHOT_FILE,
      rootless: opts.rootless ?? false,
    }
    const { tag } = selectorParts(opts.image)
    if (tag !== undefined) state.tag = tag
    if (opts.uidMap) state.uidMap = opts.uidMap
    if (opts.gidMap) state.gidMap = opts.gidMap
    created.push(path.join(dir, 'lading.json'))
    await writeBundleState(dir, state)
    return { image, layers: image.manifest.layers.length, stats }
  })
}

/** `lading raw unpack`: the rootfs alone, into an absent or empty directory. */
export async function unpackRootfs(rootfs: string, opts: UnpackOptions): Promise<UnpackResult> {
  const dir = path.resolve(rootfs)
  const image = await resolveImage(opts.layout, opts.image, opts.platform)
  return intoFreshDir(dir, 'rootfs', async (created) => {
    // Everything inside dir is ours (it was empty): on failure clear its contents.
    void created
    try {
      const stats = await applyImageLayers(image, dir, opts)
      return { image, layers: image.manifest.layers.length, stats }
    } catch (e) {
      for (const n of await fsp.readdir(dir).catch(() => [] as string[])) await removeTree(path.join(dir, n)).catch(() => {})
      throw e
    }
  })
}
