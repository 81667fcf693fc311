/**
 * `lading run` up to the moment runc takes over, and what happens after it exits:
 * image (pulled per policy) -> container record (store lock) -> layers unpacked once ->
 * root filesystem (overlay, or the copy fallback) -> config.json -> the command checked.
 *
 * Exit statuses follow podman's (podman-run(1) §Exit Status): 125 when Lading itself fails, 126
 * when the command cannot be invoked, 127 when it does not exist; otherwise the command's own.
 * runc reports a command it cannot exec as its own failure (status 1, indistinguishable from the
 * command's exit 1), so the command is looked up in the root filesystem first (checkCommand).
 */
import { accessSync, chmodSync, constants, mkdirSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { RuntimeSpec } from '../bundle/runtime-types.js'
import { LadingError } from '../errors.js'
import { atomicWriteFile } from '../io/fs.js'
import { resolveInRoot } from '../layer/path-safety.js'
import { saveSnapshot, takeSnapshot } from '../layer/snapshot.js'
import type { TransportOptions } from '../transport/open.js'
import type { ProgressCallback } from '../copy/copy.js'
import { containerSpec, INIT_PATH, plannedCommand, type RunOverrides } from './container-spec.js'
import { containerDir, createRecord, RECORD_FILE, removeContainer, SNAPSHOT_FILE, type ContainerRecord } from './containers.js'
import { imageForRun, type PullPolicy } from './images.js'
import { diffIdsOf, ensureLayers } from './layers.js'
import { copyLayers, mountOverlay, overlayAvailable, unmount, type ContainerDirs } from './rootfs.js'
import type { LocalStore } from './store.js'
import { rootlessMappings } from './subids.js'
import { runTrace } from './trace.js'

export const EXIT_LADING_FAILED = 125
export const EXIT_CANNOT_INVOKE = 126
export const EXIT_NOT_FOUND = 127

/** The container's command cannot run: podman's 126 (cannot invoke) or 127 (not found). */
export class CommandError extends LadingError {
  readonly exitStatus: 126 | 127
  constructor(message: string, exitStatus: 126 | 127) {
    super(exitStatus === 127 ? 'NOT_FOUND' : 'UNSUPPORTED', message)
    this.exitStatus = exitStatus
  }
}

export interface RunRequest {
  image: string
  pull: PullPolicy
  name?: string
  overrides: RunOverrides
  detach: boolean
  /** --rm: the container goes when its command exits (it is not pinned, see ContainerRecord). */
  remove?: boolean
  /** Pull options (registry TLS, credentials). */
  transport?: TransportOptions
  onProgress?: ProgressCallback
  onWarning?: (msg: string) => void
  /** Told of each layer this run unpacked. */
  onUnpacked?: (diffId: string) => void
  /** Aborting stops an unpack at once; the container is then removed as for any failure. */
  signal?: AbortSignal
}

export interface PreparedContainer {
  record: ContainerRecord
  /** The bundle directory (the container's directory). */
  bundle: string
  spec: RuntimeSpec
}

export function containerDirs(bundle: string): ContainerDirs {
  return { rootfs: path.join(bundle, 'rootfs'), upper: path.join(bundle, 'upper'), work: path.join(bundle, 'work') }
}

/**
 * Look up the container's command as execve would inside the root: a name with a `/` as a path
 * from the working directory, else along the PATH of its environment (runc's lookup). Symlinks
 * resolve inside the root (path-safety.ts): the image cannot make us inspect host files.
 */
export function checkCommand(rootfs: string, spec: RuntimeSpec): void {
  let args = spec.process.args
  if (args[0] === INIT_PATH) args = args.slice(2)
  const cmd = args[0]
  if (cmd === undefined || cmd === '') throw new CommandError('no command: the image has neither Entrypoint nor Cmd, and none was given', 127)
  const envPath = spec.process.env?.find((e) => e.startsWith('PATH='))?.slice(5) ?? ''
  const candidates = cmd.includes('/')
    ? [path.posix.resolve(spec.process.cwd, cmd)]
    : envPath
        .split(':')
        .filter((d) => d !== '')
        .map((d) => path.posix.join(path.posix.resolve('/', d), cmd))
  let denied: string | undefined
  for (const c of candidates) {
    const host = resolveInRoot(rootfs, c)
    let st
    try {
      st = statSync(host)
    } catch {
      continue
    }
    if (st.isDirectory()) {
      denied ??= `${c} is a directory`
      continue
    }
    try {
      accessSync(host, constants.X_OK)
      if ((st.mode & 0o111) === 0) throw new Error('no x bit')
      return
    } catch {
      denied ??= `${c}: permission denied (not executable)`
    }
  }
  if (denied !== undefined) throw new CommandError(`cannot invoke ${JSON.stringify(cmd)}: ${denied}`, 126)
  throw new CommandError(`${JSON.stringify(cmd)}: executable file not found${cmd.includes('/') ? '' : ' in $PATH'}`, 127)
}

/** Everything up to `runc run`. On failure nothing of the container is left. */
export async function prepareContainer(store: LocalStore, req: RunRequest): Promise<PreparedContainer> {
  const trace = runTrace()
  trace('prepare')
  const rootless = process.getuid?.() !== 0
  const image = await imageForRun(store, req.image, req.pull, { ...req.transport, ...(req.onProgress ? { onProgress: req.onProgress } : {}) })
  const resolved = await store.resolve(image.manifest)
  const layers = diffIdsOf(resolved)
  trace('image resolved')
  let kind: ContainerRecord['rootfs'] = overlayAvailable() ? 'overlay' : 'copy'
  const record = await createRecord(store, {
    ...(req.name !== undefined ? { name: req.name } : {}),
    image: image.name,
    manifest: resolved.manifestDescriptor,
    imageId: resolved.manifest.config.digest,
    layers,
    rootfs: kind,
    rootless,
    command: plannedCommand(resolved.config, req.overrides),
    detached: req.detach,
    pinned: !req.remove,
  })
  const bundle = containerDir(store, record.id)
  trace('record created')
  try {
    const ensured = await ensureLayers(store, resolved, {
      rootless,
      ...(req.onWarning ? { onWarning: req.onWarning } : {}),
      ...(req.onUnpacked ? { onUnpacked: req.onUnpacked } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
    })
    if (ensured.unmappedOwners.length > 0) {
      req.onWarning?.(
        `the image has files owned by ${ensured.unmappedOwners.join(', ')} (uid:gid), which an unprivileged unpack cannot give them: they belong to you, so the container sees them as root's; run as root to keep the image's owners`,
      )
    }
    trace('layers ensured')
    const dirs = containerDirs(bundle)
    // The overlay's root directory takes its owner and mode from the upper directory: 0755 like
    // any root directory (the container directory around it is 0700, closed to other users).
    // Synchronous: five calls of microseconds each, which through the thread pool cost a
    // round trip each on every run's path.
    for (const d of [dirs.rootfs, dirs.upper, dirs.work]) mkdirSync(d, { mode: 0o700 })
    chmodSync(dirs.rootfs, 0o755)
    chmodSync(dirs.upper, 0o755)
    trace('container directories made')
    if (kind === 'overlay') {
      try {
        mountOverlay(ensured.dirs, dirs, store.root, { volatile: req.remove ?? false })
      } catch (e) {
        req.onWarning?.(`${(e as Error).message}; copying the layers instead`)
        kind = 'copy'
      }
    }
    if (kind === 'copy') {
      await copyLayers(ensured.dirs, dirs.rootfs)
      await saveSnapshot(await takeSnapshot(dirs.rootfs), path.join(bundle, SNAPSHOT_FILE))
    }
    trace('rootfs made')
    const maps = rootless ? rootlessMappings({ name: os.userInfo().username, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }) : undefined
    const spec = await containerSpec(resolved.config, req.overrides, { rootfs: dirs.rootfs, rootless, hostname: record.id.slice(0, 12), ...maps })
    checkCommand(dirs.rootfs, spec)
    trace('spec made, command checked')
    // Only runc reads config.json, when this run starts it. A --rm container does not outlive
    // this process, so its config need not survive a crash (the record, which gc and ps read,
    // stays durable): two fsyncs less on every `run --rm`, 5-10 ms on a disk.
    await atomicWriteFile(path.join(bundle, 'config.json'), JSON.stringify(spec, null, '\t') + '\n', 0o600, { durable: !req.remove })
    if (kind !== record.rootfs || JSON.stringify(spec.process.args) !== JSON.stringify(record.command)) {
      record.rootfs = kind
      record.command = spec.process.args
      await atomicWriteFile(path.join(bundle, RECORD_FILE), JSON.stringify(record, null, 2) + '\n', 0o600)
    }
    trace('config written')
    return { record, bundle, spec }
  } catch (e) {
    await removeContainer(store, record, { force: true }).catch(() => {})
    throw e
  }
}

/**
 * After a foreground container exited: with `remove` (--rm) the container goes entirely;
 * otherwise its root filesystem is unmounted (the writable layer stays, for commit and restart).
 */
export async function finishContainer(store: LocalStore, record: ContainerRecord, remove: boolean): Promise<void> {
  // `runc run` in the foreground deleted its state when the container exited.
  const trace = runTrace()
  trace('finish')
  if (remove) {
    await removeContainer(store, record, { force: true, gone: true })
    trace('removed')
    return
  }
  if (record.rootfs === 'overlay') unmount(containerDirs(containerDir(store, record.id)).rootfs)
}
