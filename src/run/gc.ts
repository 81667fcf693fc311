/**
 * `lading store gc`: under the store lock (so no container is being created meanwhile), remove
 * - the layout's unreferenced blobs (store/gc.ts; images pinned by containers stay referenced),
 * - unpacked layers that no image of the layout and no container names,
 * - temp directories of unpacks whose process is dead, and container directories left without
 *   a record by a removal cut short.
 * A layer in use is never removed: every container's record lists its layers, and records are
 * written under the same lock before their layers are unpacked (store.ts).
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { removeTree } from '../bundle/cleanup.js'
import { isErrno } from '../errors.js'
import { isTempName, processAlive, tempNamePid, tempPathFor } from '../io/fs.js'
import { collectGarbage } from '../store/gc.js'
import type { GcResult } from '../store/layout.js'
import { listContainers, RECORD_FILE } from './containers.js'
import type { LocalStore } from './store.js'

/**
 * Blobs written this recently are kept even when unreferenced: a pull running meanwhile tags
 * its image only at the end (copy/copy.ts), and its blobs must survive until then.
 */
export const BLOB_GRACE_MS = 60 * 60_000

export interface StoreGcResult {
  blobs: GcResult
  layersRemoved: string[]
  tempDirsRemoved: number
  containerDirsRemoved: number
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir)
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return []
    throw e
  }
}

export async function storeGc(store: LocalStore): Promise<StoreGcResult> {
  return store.withStoreLock(async () => {
    const containers = await listContainers(store)
    const keep = await store.referencedDiffIds()
    for (const c of containers) for (const id of c.layers) keep.add(id)
    const blobs = await collectGarbage(store.layout, { minAgeMs: BLOB_GRACE_MS })
    const layersRemoved: string[] = []
    let tempDirsRemoved = 0
    for (const alg of await readdirOrEmpty(store.layersDir)) {
      const algDir = path.join(store.layersDir, alg)
      for (const name of await readdirOrEmpty(algDir)) {
        const p = path.join(algDir, name)
        if (isTempName(name)) {
          const pid = tempNamePid(name)
          if (pid === undefined || !processAlive(pid)) {
            await removeTree(p)
            tempDirsRemoved++
          }
          continue
        }
        if (name.endsWith('.lock') || name.endsWith('.break')) continue
        if (keep.has(`${alg}:${name}`)) continue
        // Out of sight at once (rename), then removed: a crash midway leaves a temp directory.
        const doomed = tempPathFor(p)
        await fsp.rename(p, doomed)
        await removeTree(doomed)
        layersRemoved.push(`${alg}:${name}`)
      }
    }
    let containerDirsRemoved = 0
    const recorded = new Set(containers.map((c) => c.id))
    for (const name of await readdirOrEmpty(store.containersDir)) {
      const p = path.join(store.containersDir, name)
      if (recorded.has(name) || !/^[0-9a-f]{64}$/.test(name)) continue
      if (
        await fsp.stat(path.join(p, RECORD_FILE)).then(
          () => true,
          () => false,
        )
      )
        continue
      await removeTree(p)
      containerDirsRemoved++
    }
    return { blobs, layersRemoved, tempDirsRemoved, containerDirsRemoved }
  })
}
