/**
 * Bundle -> image: the changes made in BUNDLE/rootfs since unpack (or the last --refresh-bundle)
 * become one new layer on top of the image the bundle came from (image-spec layer.md
 * §Change Types and §Whiteouts: added, modified, removed, with `.wh.` entries for removals).
 * diffLayer compares the rootfs to the saved snapshot by metadata, so unchanged files are not
 * read. The base is the manifest recorded in lading.json, not whatever the tag points at now,
 * so a repack never drops layers added to the tag by someone else in between silently: the tag
 * is moved to base + the new layer, like umoci.
 */
import { realpathSync } from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseDigest } from '../digest/digest.js'
import { LadingError } from '../errors.js'
import { diffLayer, type Change } from '../layer/diff.js'
import { loadSnapshot, saveSnapshot, type Snapshot } from '../layer/snapshot.js'
import { NEW_LAYER, ProgressStream, type ProgressCallback } from '../io/progress.js'
import { isIndexMediaType, type Compression } from '../spec/media-types.js'
import type { Descriptor, History } from '../spec/types.js'
import type { Layout } from '../store/layout.js'
import { resolveImage } from '../store/resolve.js'
import { appendLayer } from './append-layer.js'
import { IdRemapStream, inverseMapper } from './id-remap.js'
import { openUpDirs, restoreDirs, withOpenedModes, withOriginalModes } from './rootless-access.js'
import { ROOTFS_DIR, readBundleState, writeBundleState } from './state.js'

export interface RepackOptions {
  /** The layout the bundle was unpacked from (its blobs hold the bundle's base image). */
  layout: Layout
  /** The tag to move to the new image. */
  tag?: string
  compression?: Compression
  level?: number
  /** The history entry for the layer; undefined = a default one (created now, "lading repack"); false = none. */
  history?: History | false
  /** Container paths left out of the layer (and their contents). */
  maskPaths?: string[]
  /** Clamp mtimes in the layer to this (SOURCE_DATE_EPOCH) for reproducible layers. */
  mtimeClamp?: Date
  /** After committing, make the bundle's base the new image (further repacks diff from here). */
  refreshBundle?: boolean
  /** Progress of the new layer (action 'write', key NEW_LAYER, uncompressed bytes); none when absent. */
  onProgress?: ProgressCallback
}

export interface RepackResult {
  /** The new manifest; undefined when nothing changed (no layer, tag untouched). */
  manifest?: Descriptor
  layer?: Descriptor
  changes: Change[]
  historyMismatch?: boolean
  /**
   * The tag named a different image manifest when the repack began than the one the bundle was
   * unpacked from (someone moved it since): the new image is based on `base` and replaces `was`.
   * Not judged when the tag names an index (unpack chose one of its images).
   */
  tagMoved?: { tag: string; base: Descriptor['digest']; was: Descriptor['digest'] }
}

/** Same directory, also when reached through different symlinks or relative paths. */
function samePath(a: string, b: string): boolean {
  const real = (p: string): string => {
    try {
      return realpathSync(p)
    } catch {
      return path.resolve(p)
    }
  }
  return real(a) === real(b)
}

export async function repackBundle(bundle: string, opts: RepackOptions): Promise<RepackResult> {
  const dir = path.resolve(bundle)
  const state = await readBundleState(dir)
  if (!samePath(state.layout, opts.layout.dir)) {
    // The bundle's base manifest and its blobs live in the layout it was unpacked from.
    throw new LadingError('USAGE', `bundle ${dir} was unpacked from ${state.layout}, not ${path.resolve(opts.layout.dir)}: repack into the same layout`)
  }
  const layout = opts.layout
  const base = await resolveImage(layout, { digest: parseDigest(state.manifest.digest) }, 'any')
  const snapshotFile = path.join(dir, state.snapshot)
  const before = await loadSnapshot(snapshotFile)
  const rootfs = path.join(dir, ROOTFS_DIR)

  const diffOpts: Parameters<typeof diffLayer>[2] = {}
  if (opts.maskPaths && opts.maskPaths.length > 0) diffOpts.maskPaths = opts.maskPaths
  if (opts.mtimeClamp) diffOpts.mtimeClamp = opts.mtimeClamp

  const history = opts.history === false ? undefined : (opts.history ?? { created: new Date().toISOString(), created_by: 'lading repack' })
  const appendOpts: Parameters<typeof appendLayer>[3] = { compression: opts.compression ?? 'gzip' }
  if (opts.level !== undefined) appendOpts.level = opts.level
  // The history author defaults to the image's author (as `--history.author` documents).
  if (history) appendOpts.history = history.author === undefined && base.config.author !== undefined ? { ...history, author: base.config.author } : history
  if (opts.tag !== undefined) appendOpts.tag = opts.tag
  let tagMoved: RepackResult['tagMoved']
  if (opts.tag !== undefined) {
    const now = (await layout.listTags()).find((t) => t.tag === opts.tag)?.descriptor
    if (now && !isIndexMediaType(now.mediaType) && now.digest !== state.manifest.digest)
      tagMoved = { tag: opts.tag, base: state.manifest.digest, was: now.digest }
  }

  // A rootless bundle's unreadable directories are opened for the walk (see rootless-access.ts).
  const opened = state.rootless ? await openUpDirs(rootfs) : []
  let added: Awaited<ReturnType<typeof appendLayer>>
  let list: Change[]
  let after: Snapshot
  try {
    const { stream, changes, snapshot } = diffLayer(rootfs, withOpenedModes(before, opened), diffOpts)
    // Keep a rejection of these from being unhandled while the stream is consumed.
    changes.catch(() => {})
    snapshot.catch(() => {})
    // Ownership on disk is the host's when the bundle was unpacked with id mappings or rootless:
    // write the container's ids into the layer.
    let layerTar: Readable = stream
    if (state.rootless || state.uidMap?.length || state.gidMap?.length) {
      const remap = new IdRemapStream(
        inverseMapper(state.uidMap, state.rootless ? process.getuid?.() : undefined),
        inverseMapper(state.gidMap, state.rootless ? process.getgid?.() : undefined),
      )
      pipeline(stream, remap).catch(() => {})
      layerTar = remap
    }
    const progress = opts.onProgress
    if (progress) {
      progress({ type: 'blob-start', digest: NEW_LAYER, size: 0, mediaType: '', action: 'write' })
      const counter = new ProgressStream((bytes) => progress({ type: 'blob-progress', digest: NEW_LAYER, bytes, size: 0 }))
      pipeline(layerTar, counter).catch(() => {})
      layerTar = counter
    }
    added = await appendLayer(layout, base, layerTar, appendOpts)
    if (progress && added.layer) progress({ type: 'blob-done', digest: NEW_LAYER, size: 0, stored: added.layer })
    list = await changes
    after = added.manifest && opts.refreshBundle ? withOriginalModes(await snapshot, opened) : before
  } finally {
    await restoreDirs(opened)
  }

  if (!added.manifest) return { changes: list, ...(tagMoved ? { tagMoved } : {}) }

  if (opts.refreshBundle) {
    // State first, then the snapshot (the tree as the diff saw it: what the new layer was made
    // from). A crash in between leaves the new base with the old snapshot, whose next repack
    // re-adds this change (harmless), never one that loses changes.
    const m = added.manifest
    await writeBundleState(dir, {
      ...state,
      manifest: { mediaType: m.mediaType, digest: m.digest, size: m.size },
      ...(opts.tag !== undefined ? { tag: opts.tag } : {}),
    })
    await saveSnapshot(after, snapshotFile)
  }
  const result: RepackResult = { manifest: added.manifest, changes: list }
  if (added.layer) result.layer = added.layer
  if (added.historyMismatch) result.historyMismatch = true
  if (tagMoved) result.tagMoved = tagMoved
  return result
}
