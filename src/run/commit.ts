/**
 * `lading commit CONTAINER IMAGE`: the container's changes as one new layer on top of its image
 * (the repack diff), stored under a new name.
 *
 * - overlay containers: the upper directory IS the changeset. It is written as a layer with
 *   overlayfs' markers turned back into layer.md §Whiteouts: a 0/0 character device becomes
 *   `.wh.NAME`, a directory with `overlay.opaque=y` gets `.wh..wh..opq`; overlayfs' own xattrs
 *   (`trusted.overlay.*`, `user.overlay.*`) are left out.
 * - copy containers: the root filesystem is diffed against the snapshot taken when it was made
 *   (layer/diff.ts, as `lading repack` does).
 */
import path from 'node:path'
import type { Readable } from 'node:stream'
import { appendLayer } from '../bundle/append-layer.js'
import { diffLayer } from '../layer/diff.js'
import { loadSnapshot, walkTree, type SnapshotEntry } from '../layer/snapshot.js'
import { WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from '../layer/tar-constants.js'
import { toTarSources, type SourceItem, type WhiteoutItem } from '../layer/tar-directory.js'
import { writeTar } from '../layer/tar-writer.js'
import type { Descriptor } from '../spec/types.js'
import { containerDir, SNAPSHOT_FILE, type ContainerRecord } from './containers.js'
import { newImageName } from './image-name.js'
import { containerDirs } from './run.js'
import type { LocalStore } from './store.js'

const OVERLAY_XATTR = /^(?:trusted|user)\.overlay\./

export interface CommitOptions {
  author?: string
  message?: string
}
export interface CommitResult {
  name: string
  manifest?: Descriptor
  layer?: Descriptor
}

function withoutOverlayXattrs(e: SnapshotEntry): SnapshotEntry {
  if (!e.xattrs) return e
  const kept = Object.entries(e.xattrs).filter(([k]) => !OVERLAY_XATTR.test(k))
  const out = { ...e }
  if (kept.length > 0) out.xattrs = Object.fromEntries(kept)
  else delete out.xattrs
  return out
}

/** The changeset items of an overlay upper directory (see the module comment). */
export function* upperItems(upper: string): Generator<SourceItem | WhiteoutItem> {
  for (const [rel, e] of walkTree(upper)) {
    if (rel === '') continue
    if (e.type === 'char' && e.devmajor === 0 && e.devminor === 0) {
      yield { whiteout: rel }
      continue
    }
    yield { rel, entry: withoutOverlayXattrs(e) }
    const opaque =
      e.type === 'directory' && Object.entries(e.xattrs ?? {}).some(([k, v]) => OVERLAY_XATTR.test(k) && k.endsWith('.opaque') && v.toString() === 'y')
    // WhiteoutItem names the path removed; `.wh.` + `.wh..opq` spells the opaque marker.
    if (opaque) yield { whiteout: `${rel}/${WHITEOUT_OPAQUE.slice(WHITEOUT_PREFIX.length)}` }
  }
}

/** The container's changes as an uncompressed layer tar. */
export async function containerChanges(store: LocalStore, rec: ContainerRecord): Promise<Readable> {
  const dirs = containerDirs(containerDir(store, rec.id))
  if (rec.rootfs === 'overlay') return writeTar(toTarSources(dirs.upper, upperItems(dirs.upper)))
  const before = await loadSnapshot(path.join(containerDir(store, rec.id), SNAPSHOT_FILE))
  return diffLayer(dirs.rootfs, before).stream
}

export async function commitContainer(store: LocalStore, rec: ContainerRecord, name: string, opts: CommitOptions = {}): Promise<CommitResult> {
  const tag = newImageName(name)
  const base = await store.resolve(rec.manifest)
  const tar = await containerChanges(store, rec)
  const history = {
    created: new Date().toISOString(),
    created_by: `lading commit ${rec.name}`,
    ...(opts.author !== undefined ? { author: opts.author } : {}),
    ...(opts.message !== undefined ? { comment: opts.message } : {}),
  }
  const r = await appendLayer(store.layout, { manifest: base.manifest, config: base.config }, tar, { compression: 'gzip', history, tag })
  if (r.manifest === undefined) {
    // No change: the new name is the same image.
    await store.layout.setTag(tag, base.manifestDescriptor)
    return { name: tag, manifest: base.manifestDescriptor }
  }
  return { name: tag, manifest: r.manifest, ...(r.layer ? { layer: r.layer } : {}) }
}
