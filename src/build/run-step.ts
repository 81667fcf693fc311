/**
 * RUN: one process in the stage's root filesystem, through runc (runtime-spec).
 *
 * The runtime config starts from the bundle defaults of bundle/runtime-config.ts (what `runc spec`
 * writes) and is changed as builders do for build steps: the stage's env, user, working directory
 * and command; Docker's default capability set (a build step runs apt-get and chown, which runc's
 * three default capabilities would not allow); no_new_privileges off (setuid helpers such as `su`
 * work, as under docker build and buildah). Network: a new network namespace with only a loopback
 * interface (runc brings `lo` up in a new namespace) unless the host's is asked for.
 *
 * Mount points that runc creates in the rootfs (a missing /proc, /dev, a cache target) are not
 * part of the step's changes: they are removed again after the run and masked from the diff, as
 * BuildKit does.
 */
import { spawn } from 'node:child_process'
import { lstatSync, promises as fsp, realpathSync } from 'node:fs'
import path from 'node:path'
import { LadingError } from '../errors.js'
import { rootFileReader } from '../bundle/root-file.js'
import { defaultRuntimeSpec } from '../bundle/runtime-config.js'
import type { RuntimeMount, RuntimeSpec } from '../bundle/runtime-types.js'
import { resolveUser } from '../bundle/user.js'
import { RootResolver } from '../layer/path-safety.js'

/** Docker's default capabilities for containers and build steps (moby oci/caps/defaults.go). */
export const BUILD_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
]

export interface RunOptions {
  /** A directory for config.json and runc's state; `rootfs` is the root filesystem. */
  bundle: string
  rootfs: string
  args: string[]
  env: string[]
  cwd: string
  /** The stage's USER (name or id, with an optional group), resolved in the rootfs. */
  user: string | undefined
  network: 'none' | 'host'
  mounts: RuntimeMount[]
  rootless: boolean
  /** The step as written, for the error message. */
  what: string
  onOutput?: (chunk: Buffer) => void
  /** Lines of output kept for the error message of a failing step. */
  tailLines?: number
  signal?: AbortSignal
}

export interface RunResult {
  /** Container paths the run created only as mount points (already removed); mask them from the diff. */
  mountPoints: string[]
}

let runSeq = 0

/** Run one step; BUILD_FAILED with the exit status and the last lines of output when it fails. */
export async function runStep(o: RunOptions): Promise<RunResult> {
  const spec: RuntimeSpec = defaultRuntimeSpec({ rootless: o.rootless })
  spec.root = { path: realpathSync(o.rootfs), readonly: false }
  spec.hostname = 'lading-build'
  // In a user namespace (rootless) the capabilities are the namespace's own: the same set works.
  const caps = BUILD_CAPABILITIES
  if (o.rootless && o.network === 'none') {
    // runc spec --rootless shares the host's network; a build step gets its own, with loopback only.
    spec.linux.namespaces.push({ type: 'network' })
  }
  spec.process.capabilities = { bounding: [...caps], effective: [...caps], permitted: [...caps], ambient: [...caps] }
  spec.process.noNewPrivileges = false
  spec.process.args = o.args
  spec.process.env = o.env
  spec.process.cwd = o.cwd
  const resolved = await resolveUser(o.user, rootFileReader(o.rootfs)).catch((e: unknown) => {
    throw new LadingError('BUILD_FAILED', `${o.what}: USER ${o.user ?? ''}: ${e instanceof Error ? e.message.replace(/^image config: \/config\/User: /, '') : String(e)}`)
  })
  spec.process.user = resolved.user
  if (o.network === 'host') {
    spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network')
    // With the host's network, name resolution needs the host's resolver configuration.
    spec.mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: '/etc/resolv.conf', options: ['rbind', 'ro'] })
    spec.mounts.push({ destination: '/etc/hosts', type: 'bind', source: '/etc/hosts', options: ['rbind', 'ro'] })
  }
  spec.mounts.push(...o.mounts)

  // Which mount points (or their parents) are missing now: runc will create them.
  const made = missingMountPoints(spec.root.path, spec.mounts.map((m) => m.destination))
  await fsp.mkdir(o.bundle, { recursive: true })
  await fsp.writeFile(path.join(o.bundle, 'config.json'), JSON.stringify(spec))
  const stateDir = path.join(o.bundle, 'runc-state')
  const id = `lading-build-${process.pid}-${++runSeq}-${Date.now().toString(36)}`
  const tail = new OutputTail(o.tailLines ?? 10)
  let status: number | null
  let signal: NodeJS.Signals | null
  try {
    ;({ status, signal } = await new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      // One pipe for the step's stdout and stderr (joined by the shell, which then becomes runc), so
      // that progress output and the error message get both through one stream. Their relative
      // order is runc's: a foreground runc without a terminal gives the container pipes of its own
      // and copies stdout and stderr to ours separately, so a line on stderr can overtake a line on
      // stdout written just before it (buildah and BuildKit have the same property).
      const child = spawn('/bin/sh', ['-c', 'exec "$@" 2>&1', 'sh', 'runc', '--root', stateDir, 'run', '--bundle', o.bundle, id], { stdio: ['ignore', 'pipe', 'inherit'] })
      child.stdout.on('data', (b: Buffer) => { tail.push(b); o.onOutput?.(b) })
      const abort = (): void => { child.kill('SIGKILL') }
      o.signal?.addEventListener('abort', abort, { once: true })
      child.on('error', (e) => reject(new LadingError('BUILD_FAILED', `${o.what}: cannot start runc: ${e.message}`, { cause: e })))
      child.on('close', (code, sig) => { o.signal?.removeEventListener('abort', abort); resolve({ status: code, signal: sig }) })
    }))
  } finally {
    // A container left behind (runc killed, our process interrupted) is removed with its state.
    await new Promise<void>((resolve) => {
      const d = spawn('runc', ['--root', stateDir, 'delete', '--force', id], { stdio: 'ignore' })
      d.on('error', () => resolve())
      d.on('close', () => resolve())
    })
    await fsp.rm(stateDir, { recursive: true, force: true })
    await removeMountPoints(spec.root.path, made)
  }
  if (o.signal?.aborted) throw new LadingError('CONFLICT', `${o.what}: interrupted`)
  if (status !== 0) {
    const how = signal ? `was killed by ${signal}` : `exited with status ${status}`
    const last = tail.lines()
    throw new LadingError('BUILD_FAILED', `${o.what}: ${how}${last.length ? `; last output: ${last.join(' | ')}` : ' (no output)'}`)
  }
  return { mountPoints: made }
}

/**
 * For each mount destination, the shallowest component that does not exist in the rootfs (what
 * runc's mkdir -p will create), as container paths without the leading '/'.
 */
function missingMountPoints(root: string, destinations: string[]): string[] {
  const out: string[] = []
  const resolver = new RootResolver(root, { onEscape: 'clamp' })
  for (const d of destinations) {
    const comps = d.split('/').filter((c) => c !== '' && c !== '.')
    for (let i = 1; i <= comps.length; i++) {
      const rel = comps.slice(0, i).join('/')
      const r = resolver.resolveParent(comps.slice(0, i), d, 'existing')
      if (r === undefined) break
      // lstat, not stat: a dangling symlink exists as far as runc's mkdir is concerned.
      let exists = true
      try { lstatSync(r.host) } catch { exists = false }
      if (!exists) { if (!out.includes(rel)) out.push(rel); break }
    }
  }
  return out
}

/** Remove what runc created for mount points: empty directories and empty files only. */
async function removeMountPoints(root: string, made: string[]): Promise<void> {
  for (const rel of [...made].sort((a, b) => b.length - a.length)) {
    const host = path.join(root, rel)
    await removeEmptyTree(host).catch(() => {})
  }
}

async function removeEmptyTree(p: string): Promise<void> {
  const st = await fsp.lstat(p)
  if (st.isDirectory()) {
    for (const n of await fsp.readdir(p)) await removeEmptyTree(path.join(p, n))
    await fsp.rmdir(p)
  } else if (st.isFile() && st.size === 0) {
    await fsp.unlink(p)
  }
}

/** The last lines of a step's output, bounded in memory. */
class OutputTail {
  #buf = ''
  readonly #max: number
  constructor(maxLines: number) { this.#max = maxLines }
  push(b: Buffer): void {
    this.#buf = (this.#buf + b.toString('utf8')).slice(-8192)
  }

  lines(): string[] {
    return this.#buf.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '').slice(-this.#max)
  }
}
