/**
 * Containers of the local store: `containers/<id>/` is both the container's record and its
 * runtime bundle (runtime-spec bundle.md):
 *
 *   container.json  the record (below), written atomically; its presence makes the container
 *   config.json     the runtime config (container-spec.ts), root.path "rootfs"
 *   rootfs/         the root filesystem: an overlay mount point, or the merged copy
 *   upper/ work/    the overlay's writable layer and its work directory
 *   rootfs.snapshot the copy's state when made (what `lading commit` diffs against)
 *   log             stdout and stderr of a detached container
 *
 * Records are created under the store lock, after checking the name is free, and they list the
 * diff_ids the container uses, which gc keeps (store.ts). Whether a container runs is asked of
 * runc each time (runc.ts); a record without runc state is a container that has exited.
 */
import { randomBytes } from 'node:crypto'
import { promises as fsp, rmSync } from 'node:fs'
import path from 'node:path'
import { removeTree } from '../bundle/cleanup.js'
import { LadingError, isErrno } from '../errors.js'
import { atomicWriteFile, isTempName } from '../io/fs.js'
import type { Descriptor } from '../spec/types.js'
import { unmount, type RootfsKind } from './rootfs.js'
import { runcDelete, runcKill, runcState, type RuncState } from './runc.js'
import type { LocalStore } from './store.js'

export const RECORD_FILE = 'container.json'
export const LOG_FILE = 'log'
export const SNAPSHOT_FILE = 'rootfs.snapshot'
const MAX_RECORD_BYTES = 1024 * 1024

export interface ContainerRecord {
  version: 1
  id: string
  name: string
  /** The name the image was asked for by, and what it resolved to. */
  image: string
  manifest: Descriptor
  imageId: string
  /** The image's diff_ids, bottom first: the store's layers this container uses. */
  layers: readonly string[]
  rootfs: RootfsKind
  rootless: boolean
  created: string
  command: string[]
  detached: boolean
  /**
   * The image's manifest is pinned in the layout (store.pin) for as long as the container exists.
   * Containers that outlive their run are; a `--rm` run is not (two index.json rewrites on the
   * path of every run): its layers are kept by its record, and nothing reads its image's blobs.
   */
  pinned: boolean
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'exited'

export function containerDir(store: LocalStore, id: string): string {
  return path.join(store.containersDir, id)
}

/** Names as podman allows them: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/

export function newContainerId(): string {
  return randomBytes(32).toString('hex')
}

export async function readRecord(store: LocalStore, id: string): Promise<ContainerRecord> {
  const file = path.join(containerDir(store, id), RECORD_FILE)
  let text: string
  try {
    const st = await fsp.stat(file)
    if (st.size > MAX_RECORD_BYTES) throw new LadingError('SIZE_LIMIT', `container ${id}: record larger than ${MAX_RECORD_BYTES} bytes`)
    text = await fsp.readFile(file, 'utf8')
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw new LadingError('NOT_FOUND', `no container ${JSON.stringify(id)} in the store ${store.root}`)
    throw e
  }
  try {
    const r = JSON.parse(text) as ContainerRecord
    if (r.version !== 1 || r.id !== id || !Array.isArray(r.layers)) throw new Error('not a version 1 record of this container')
    return r
  } catch (e) {
    throw new LadingError('INVALID_JSON', `container ${id}: ${file}: ${(e as Error).message}`, { cause: e })
  }
}

/** Every container with a record (directories without one are being made or removed). */
export async function listContainers(store: LocalStore): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = []
  for (const name of (await fsp.readdir(store.containersDir)).sort()) {
    if (isTempName(name) || !/^[0-9a-f]{64}$/.test(name)) continue
    try {
      out.push(await readRecord(store, name))
    } catch (e) {
      if (!(e instanceof LadingError && e.code === 'NOT_FOUND')) throw e
    }
  }
  return out.sort((a, b) => a.created.localeCompare(b.created))
}

/** The container a user names: full id, unique id prefix, or name. */
export async function findContainer(store: LocalStore, idOrName: string): Promise<ContainerRecord> {
  const all = await listContainers(store)
  const byName = all.find((c) => c.name === idOrName)
  if (byName) return byName
  if (/^[0-9a-f]{1,64}$/.test(idOrName)) {
    const hits = all.filter((c) => c.id.startsWith(idOrName))
    if (hits.length === 1) return hits[0]!
    if (hits.length > 1) throw new LadingError('USAGE', `container id prefix ${idOrName} is ambiguous`)
  }
  throw new LadingError('NOT_FOUND', `no container ${JSON.stringify(idOrName)} in the store ${store.root}`)
}

/**
 * Make the record of a new container (and its directory), under the store lock: the name must be
 * free, and from here on gc keeps its layers and its image. `fill` completes the record.
 */
export async function createRecord(
  store: LocalStore,
  fields: Omit<ContainerRecord, 'version' | 'id' | 'name' | 'created'> & { name?: string },
): Promise<ContainerRecord> {
  const id = newContainerId()
  const name = fields.name ?? `lading-${id.slice(0, 12)}`
  if (!NAME.test(name))
    throw new LadingError('USAGE', `invalid container name ${JSON.stringify(name)} (letters, digits, '_', '.', '-'; not starting with a symbol)`)
  const { name: _asked, ...rest } = fields
  const rec: ContainerRecord = { version: 1, id, name, created: new Date().toISOString(), ...rest }
  return store.withStoreLock(async () => {
    if ((await listContainers(store)).some((c) => c.name === name))
      throw new LadingError('EXISTS', `the container name ${JSON.stringify(name)} is already in use`)
    const dir = containerDir(store, id)
    await fsp.mkdir(dir, { mode: 0o700 })
    if (rec.pinned) await store.pin(id, rec.manifest)
    // What the record must be for gc and for other runs (name taken, layers in use) it is once
    // renamed in, durable or not. Only a container that outlives its run needs it after a crash:
    // a `--rm` one does not survive a crash of the machine, and a directory left without its
    // record is removed by gc. Two fsyncs less on the path of every `run --rm` (on disk: ms).
    await atomicWriteFile(path.join(dir, RECORD_FILE), JSON.stringify(rec, null, 2) + '\n', 0o600, { durable: rec.pinned })
    return rec
  })
}

export function containerStatus(store: LocalStore, rec: ContainerRecord): { status: ContainerStatus; state?: RuncState } {
  const state = runcState(store.runcRoot, rec.id)
  if (!state || state.status === 'stopped') return state ? { status: 'exited', state } : { status: 'exited' }
  if (state.status === 'creating') return { status: 'created', state }
  return { status: state.status, state }
}

/**
 * Stop a running container: `signal` to its init, then SIGKILL to all its processes after
 * `timeoutMs` (podman stop's contract). Returns whether it was running.
 */
export async function stopContainer(store: LocalStore, rec: ContainerRecord, opts: { signal?: string; timeoutMs?: number } = {}): Promise<boolean> {
  const running = (): boolean => {
    const s = runcState(store.runcRoot, rec.id)
    return s !== undefined && s.status !== 'stopped'
  }
  if (!running()) return false
  runcKill(store.runcRoot, rec.id, opts.signal ?? 'TERM')
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000)
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
    if (!running()) return true
  }
  runcKill(store.runcRoot, rec.id, 'KILL', true)
  for (let i = 0; i < 100 && running(); i++) await new Promise((r) => setTimeout(r, 50))
  return true
}

/**
 * Remove a container: its runc state, its mount, its directory (writable layer and all), its
 * pin on the image. A running container is refused unless `force` (then it is killed first).
 * `gone`: the caller knows runc has no state for it (a foreground `runc run` that returned
 * deletes its own), which spares two runc calls on the path of every `run --rm`.
 */
export async function removeContainer(store: LocalStore, rec: ContainerRecord, opts: { force?: boolean; gone?: boolean } = {}): Promise<void> {
  if (!opts.gone) {
    const { status } = containerStatus(store, rec)
    if (status === 'running' || status === 'paused' || status === 'created') {
      if (!opts.force) throw new LadingError('CONFLICT', `container ${rec.name} is ${status}: stop it first, or remove it with --force`)
      await stopContainer(store, rec, { signal: 'KILL', timeoutMs: 2000 })
    }
    runcDelete(store.runcRoot, rec.id)
  }
  const dir = containerDir(store, rec.id)
  try {
    unmount(path.join(dir, 'rootfs'))
  } catch (e) {
    throw new LadingError('CONFLICT', `container ${rec.name}: its root filesystem is still mounted (${(e as Error).message})`, { cause: e })
  }
  // The record goes first: a removal cut short leaves a directory that is no container.
  if (rec.pinned !== false) {
    await store.withStoreLock(async () => {
      await fsp.rm(path.join(dir, RECORD_FILE), { force: true })
      await store.unpin(rec.id)
    })
  } else {
    // Unpinned (--rm): the record's unlink is atomic and nothing else is to be changed with it;
    // gc, under the lock, reads a record or finds none (listContainers), and once the root
    // filesystem is unmounted (above) no container uses the layers it kept. Taking the store
    // lock here cost every `run --rm` a lock file's create, write and unlink.
    rmSync(path.join(dir, RECORD_FILE), { force: true })
  }
  // Synchronously first: a container's directory is a few entries (config, upper, work, rootfs),
  // which fs.rm walks with two thread-pool round trips per entry; removeTree copes with what
  // this cannot remove (directories of mode 000 that a rootless container made).
  try {
    rmSync(dir, { recursive: true, force: true })
  } catch {
    await removeTree(dir)
  }
}
