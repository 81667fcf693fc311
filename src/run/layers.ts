/**
 * Layers unpacked once, by diff_id, into immutable directories of the store:
 * `layers/<alg>/<hex>/` holding the layer's tree alone, its whiteouts as overlayfs markers
 * (layer/apply.ts WhiteoutStrategy), ready to be one lowerdir of an overlay mount.
 *
 * Contract:
 * - A layer directory exists only complete: the layer is applied into a temp directory beside it
 *   (`.<hex>.tmp-<pid>-<random>`, swept by gc once its writer is dead), the file system is
 *   synced, and the directory is renamed in. A crash leaves a temp directory, never a partial
 *   layer under its final name.
 * - Unpackers of one layer coordinate with a lock file (io/lock.ts) beside it: the first unpacks,
 *   the others wait and find it done. Each layer is unpacked once however many runs start at once.
 * - The directory is named by the diff_id the image's config claims, so the uncompressed bytes
 *   are checked against it while they are applied (unpack.ts verifyDiffIds): a layer whose
 *   config lies about its diff_id could otherwise plant a tree that other images use.
 * - Nothing ever writes into a layer directory after the rename; containers write to their own
 *   upper directory (rootfs.ts).
 */
import { spawnSync } from 'node:child_process'
import { lstatSync, promises as fsp } from 'node:fs'
import path from 'node:path'
import { removeTree } from '../bundle/cleanup.js'
import { applyImageLayer } from '../bundle/unpack.js'
import { parseDigest } from '../digest/digest.js'
import { LadingError, isErrno } from '../errors.js'
import { exists, fsyncDir, tempPathFor } from '../io/fs.js'
import { withLock } from '../io/lock.js'
import type { IdMapping, WhiteoutStrategy } from '../layer/apply.js'
import type { ResolvedImage } from '../store/resolve.js'
import { STORE_LOCK_TIMEOUT_MS, type LocalStore } from './store.js'
import { hintTreeParent, nativeMount } from '../io/native-fs.js'
import { runTrace } from './trace.js'

/** The tree of an unpacked layer, inside its directory. */
export const LAYER_TREE = 'diff'
/** Beside the tree (rootless stores): the owners the layer has that the user cannot map. */
export const UNMAPPED_FILE = 'unmapped-owners.json'

export interface EnsureLayersOptions {
  rootless?: boolean
  onWarning?: (msg: string) => void
  /** Told of each layer this call unpacked (not those found done). */
  onUnpacked?: (diffId: string) => void
  signal?: AbortSignal
}

/** The directory of the layer with this diff_id. */
export function layerDir(store: LocalStore, diffId: string): string {
  const d = parseDigest(diffId)
  const i = d.indexOf(':')
  return path.join(store.layersDir, d.slice(0, i), d.slice(i + 1))
}

/** The image's diff_ids (config.md §rootfs), one per manifest layer, or INVALID_CONFIG. */
export function diffIdsOf(image: ResolvedImage): readonly string[] {
  const ids = image.config.rootfs?.diff_ids ?? []
  if (ids.length !== image.manifest.layers.length) {
    throw new LadingError(
      'INVALID_CONFIG',
      `image config: rootfs.diff_ids has ${ids.length} entries for ${image.manifest.layers.length} layers (config.md §rootfs)`,
    )
  }
  return ids
}

/** The overlayfs markers for a store: `trusted.` for root's mounts, `user.` (userxattr) rootless. */
export function whiteoutStrategy(rootless: boolean): WhiteoutStrategy {
  return { kind: 'overlayfs', opaqueXattr: rootless ? 'user.overlay.opaque' : 'trusted.overlay.opaque' }
}

export interface EnsuredLayers {
  /** The layers' trees, bottom first. */
  dirs: string[]
  /**
   * Rootless: file owners (`uid:gid`) of the image outside the user's mapping (container 0 ->
   * the user). Their files belong to the user on disk, so the container sees them as root's.
   */
  unmappedOwners: string[]
}

/**
 * Make sure every layer of `image` is unpacked; returns their tree directories, bottom layer
 * first. Layers already there are used as they are.
 */
export async function ensureLayers(store: LocalStore, image: ResolvedImage, opts: EnsureLayersOptions = {}): Promise<EnsuredLayers> {
  const ids = diffIdsOf(image)
  const dirs: string[] = []
  const unmapped = new Set<string>()
  for (let i = 0; i < ids.length; i++) {
    const dir = layerDir(store, ids[i]!)
    dirs.push(path.join(dir, LAYER_TREE))
    // lstat, synchronous: one call of microseconds per layer on every run's path.
    if (!lstatSync(dir, { throwIfNoEntry: false })) {
      await fsp.mkdir(path.dirname(dir), { recursive: true, mode: 0o700 })
      // Each layer's temp directory has a unique name: spread them over the file system.
      hintTreeParent(path.dirname(dir))
      await withLock(
        `${dir}.lock`,
        async () => {
          if (await exists(dir)) return // another process finished it while we waited
          await unpackLayer(image, i, dir, opts)
          opts.onUnpacked?.(ids[i]!)
        },
        { timeoutMs: STORE_LOCK_TIMEOUT_MS },
      )
    }
    if (opts.rootless) for (const o of await readUnmapped(dir)) unmapped.add(o)
  }
  return { dirs, unmappedOwners: [...unmapped].sort() }
}

async function readUnmapped(dir: string): Promise<string[]> {
  try {
    const v = JSON.parse(await fsp.readFile(path.join(dir, UNMAPPED_FILE), 'utf8')) as unknown
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return []
    throw e
  }
}

/** applyLayer's warning for an owner outside the id mappings (layer/apply.ts #ids). */
const UNMAPPED_WARNING = /: owner (\d+:\d+) is outside the id mappings/

async function unpackLayer(image: ResolvedImage, i: number, dir: string, opts: EnsureLayersOptions): Promise<void> {
  const tmp = tempPathFor(dir)
  try {
    await fsp.mkdir(tmp, { mode: 0o700 })
    // A layer without a `./` entry leaves its root as made: 0755, as a root directory is.
    await fsp.mkdir(path.join(tmp, LAYER_TREE), { mode: 0o755 })
    const rootless = opts.rootless ?? false
    const unmapped = new Set<string>()
    const onWarning = (msg: string): void => {
      const m = UNMAPPED_WARNING.exec(msg)
      if (m) unmapped.add(m[1]!)
      // Rootless device nodes under dev/ are not missed: the runtime mounts its own /dev.
      else if (!(rootless && /^layer entry "\.?\/?dev\/[^"]*": (?:char|block) device \d+:\d+ skipped \(rootless\)$/.test(msg))) opts.onWarning?.(msg)
    }
    // Rootless: container root is the user (runtime-config.ts's default mapping), so owner 0 maps
    // to the user and any other owner is reported (once per layer, kept beside the tree).
    const self = (id: number | undefined): IdMapping[] => [{ containerId: 0, hostId: id ?? 0, size: 1 }]
    const early = syncWhileWriting(tmp)
    try {
      await applyImageLayer(image, i, path.join(tmp, LAYER_TREE), {
        rootless,
        ...(rootless ? { uidMap: self(process.getuid?.()), gidMap: self(process.getgid?.()) } : {}),
        verifyDiffIds: true,
        whiteouts: whiteoutStrategy(rootless),
        onWarning,
        ...(opts.signal ? { signal: opts.signal } : {}),
      })
    } finally {
      await early.stop()
    }
    if (unmapped.size > 0) await fsp.writeFile(path.join(tmp, UNMAPPED_FILE), JSON.stringify([...unmapped].sort()) + '\n', { mode: 0o600 })
    // Without a sync a crash after the rename could leave the name pointing at files whose data
    // was never written (ext4 orders renames of files, not of the directories holding new files).
    runTrace()('layer applied')
    syncFileSystem(tmp, i)
    runTrace()('layer synced')
    await fsp.rename(tmp, dir)
    await fsyncDir(path.dirname(dir))
    runTrace()('layer renamed')
  } catch (e) {
    await removeTree(tmp).catch(() => {})
    if (isErrno(e, 'ENOTEMPTY') || isErrno(e, 'EEXIST')) return // complete elsewhere (cannot happen under the lock)
    throw e
  }
}

/** How often a layer's unpack hands what it has written so far to the disk (syncWhileWriting). */
const EARLY_SYNC_MS = 100

/**
 * While a layer is applied, a syncfs(2) on libuv's pool every EARLY_SYNC_MS (one at a time): the
 * disk writes the files made so far while the main thread makes more, so the syncfs that must
 * precede the rename (syncFileSystem) finds little left. On disk, that last sync took 130-170 ms
 * for the 204 MB Debian layer when it had all of it to write. Errors of these syncs are ignored:
 * the last one reports. Without the addon there are none (a process per sync would cost more).
 */
function syncWhileWriting(dir: string): { stop(): Promise<void> } {
  const native = nativeMount()
  if (!native) return { stop: async () => {} }
  let inFlight: Promise<void> | undefined
  const settled = (): void => {
    inFlight = undefined
  }
  const kick = (): void => {
    if (inFlight) return
    try {
      inFlight = native.syncfsStart(dir).then(settled, settled)
    } catch {
      // the directory is gone or unreadable: the apply itself fails and says why
    }
  }
  const timer = setInterval(kick, EARLY_SYNC_MS)
  return {
    async stop() {
      clearInterval(timer)
      await inFlight
    },
  }
}

/**
 * syncfs(2) of the file system holding `dir`: through the addon (io/native-fs.ts), else coreutils'
 * `sync -f`, which is that call in a process of its own (Node has no syncfs).
 */
function syncFileSystem(dir: string, i: number): void {
  const native = nativeMount()
  if (native) {
    try {
      native.syncfs(dir)
    } catch (e) {
      throw new LadingError('CONFLICT', `layer ${i}: could not sync the store's file system: ${(e as Error).message}`, { cause: e })
    }
    return
  }
  const s = spawnSync('sync', ['-f', dir], { stdio: 'ignore' })
  if (s.error !== undefined || s.status !== 0) throw new LadingError('CONFLICT', `layer ${i}: could not sync the store's file system`)
}
