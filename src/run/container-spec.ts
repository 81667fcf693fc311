/**
 * The runtime config of a container: bundle/runtime-config.ts's conversion of the image config
 * (image-spec conversion.md), with `lading run`'s overrides. Overrides of what the image config
 * says (entrypoint, command, env, user, working directory) are applied to a copy of the image
 * config BEFORE the conversion, so the one generator applies its rules to them (PATH and HOME
 * defaults, user resolution from the container's /etc/passwd); the rest (mounts, network,
 * capabilities, hostname, terminal, init) are runtime-spec settings applied after.
 */
import path from 'node:path'
import { rootFileReader } from '../bundle/root-file.js'
import { envName, processArgs, runtimeConfig, type IdMap } from '../bundle/runtime-config.js'
import type { RuntimeSpec } from '../bundle/runtime-types.js'
import { LadingError } from '../errors.js'
import type { ImageConfig } from '../spec/types.js'

export interface VolumeMount {
  host: string
  container: string
  readonly: boolean
}

export interface RunOverrides {
  /** KEY=VALUE entries, replacing the image's variable of the same name. */
  env?: string[]
  user?: string
  workdir?: string
  /** Replaces Entrypoint; without `cmd` the image's Cmd is dropped too (as docker and podman do). */
  entrypoint?: string[]
  /** Replaces Cmd. */
  cmd?: string[]
  hostname?: string
  volumes?: VolumeMount[]
  tmpfs?: string[]
  readOnly?: boolean
  network?: 'none' | 'host'
  capAdd?: string[]
  capDrop?: string[]
  terminal?: boolean
  /** A static init binary on the host, bind-mounted and run as PID 1 before the command. */
  init?: string
}

/** Where --init's binary appears in the container (podman uses /run/podman-init). */
export const INIT_PATH = '/run/lading-init'

/** The image config as the container sees it: entrypoint, cmd, env, user, workdir overridden. */
export function withOverrides(config: ImageConfig, o: RunOverrides): ImageConfig {
  const out = structuredClone(config)
  const c = { ...(out.config ?? {}) }
  if (o.entrypoint !== undefined) {
    c.Entrypoint = o.entrypoint
    if (o.cmd === undefined) delete c.Cmd
  }
  if (o.cmd !== undefined && o.cmd.length > 0) c.Cmd = o.cmd
  if (o.env?.length) {
    const names = new Set(o.env.map(envName))
    const kept = (Array.isArray(c.Env) ? c.Env : []).filter((e) => !names.has(envName(e)))
    c.Env = [...kept, ...o.env]
  }
  if (o.user !== undefined) c.User = o.user
  if (o.workdir !== undefined) {
    if (!o.workdir.startsWith('/')) throw new LadingError('USAGE', `--workdir ${JSON.stringify(o.workdir)}: must be an absolute path`)
    c.WorkingDir = o.workdir
  }
  out.config = c
  return out
}

/** runc's capability names: CAP_ prefixed, upper case; `ALL` stands for every capability. */
function capName(s: string): string {
  const u = s.toUpperCase()
  if (u === 'ALL') return u
  const n = u.startsWith('CAP_') ? u : `CAP_${u}`
  if (!/^CAP_[A-Z_]+$/.test(n)) throw new LadingError('USAGE', `invalid capability ${JSON.stringify(s)}`)
  return n
}

/** Every capability of Linux 6.x (capabilities(7)), for --cap-add ALL. */
const ALL_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
]

function adjustCaps(spec: RuntimeSpec, add: string[], drop: string[]): void {
  const caps = spec.process.capabilities
  if (!caps) return
  const adds = add.map(capName).flatMap((c) => (c === 'ALL' ? ALL_CAPS : [c]))
  const drops = new Set(drop.map(capName))
  const edit = (list: string[] | undefined): string[] => {
    const set = new Set(drops.has('ALL') ? [] : (list ?? []))
    for (const c of adds) set.add(c)
    for (const c of drops) set.delete(c)
    return [...set]
  }
  caps.bounding = edit(caps.bounding)
  caps.effective = edit(caps.effective)
  caps.permitted = edit(caps.permitted)
  caps.ambient = edit(caps.ambient)
}

/**
 * The container's config.json. `rootfs` is the container's root filesystem on the host (read
 * for /etc/passwd and /etc/group, staying inside it); the spec names it relatively as `rootfs`.
 */
export async function containerSpec(
  config: ImageConfig,
  o: RunOverrides,
  opts: { rootfs: string; rootless: boolean; hostname: string; uidMap?: IdMap[]; gidMap?: IdMap[] },
): Promise<RuntimeSpec> {
  const spec = await runtimeConfig(withOverrides(config, o), {
    rootless: opts.rootless,
    readRootFile: rootFileReader(opts.rootfs),
    ...(opts.uidMap ? { uidMap: opts.uidMap } : {}),
    ...(opts.gidMap ? { gidMap: opts.gidMap } : {}),
  })
  spec.hostname = o.hostname ?? opts.hostname
  if (o.terminal) {
    spec.process.terminal = true
    // conversion.md leaves TERM to the runtime; a terminal without it is barely usable.
    if (!spec.process.env?.some((e) => envName(e) === 'TERM')) spec.process.env = [...(spec.process.env ?? []), 'TERM=xterm']
  }
  if (o.readOnly) spec.root.readonly = true
  for (const v of o.volumes ?? []) {
    spec.mounts.push({ destination: v.container, type: 'bind', source: v.host, options: ['rbind', v.readonly ? 'ro' : 'rw'] })
  }
  for (const t of o.tmpfs ?? []) {
    if (!t.startsWith('/')) throw new LadingError('USAGE', `--tmpfs ${JSON.stringify(t)}: must be an absolute path`)
    spec.mounts.push({ destination: t, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] })
  }
  if (o.network === 'host') {
    // runtime-spec config-linux.md §Namespaces: no network entry means the runtime's own.
    spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network')
    if (!spec.mounts.some((m) => m.destination === '/etc/resolv.conf')) {
      spec.mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: '/etc/resolv.conf', options: ['rbind', 'ro'] })
    }
    // sysfs needs a network namespace of our own; bind the host's read-only instead (as rootless does).
    for (const m of spec.mounts) {
      if (m.destination === '/sys' && m.type === 'sysfs')
        Object.assign(m, { type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] })
    }
  } else if (opts.rootless && !spec.linux.namespaces.some((n) => n.type === 'network')) {
    // --network none rootless: a network namespace of its own (only lo), owned by the user
    // namespace; that ownership lets the container mount its own sysfs instead of the host's
    // (whose /sys/class/net would list the host's interfaces).
    spec.linux.namespaces.push({ type: 'network' })
    for (const m of spec.mounts) {
      if (m.destination === '/sys' && m.type === 'bind') Object.assign(m, { type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] })
    }
  }
  adjustCaps(spec, o.capAdd ?? [], o.capDrop ?? [])
  if (o.init !== undefined) {
    spec.mounts.push({ destination: INIT_PATH, type: 'bind', source: path.resolve(o.init), options: ['bind', 'ro'] })
    spec.process.args = withInit(spec.process.args)
  }
  return spec
}

/** tini's command line: the init, then the command it runs and forwards signals to. */
function withInit(args: string[]): string[] {
  return [INIT_PATH, '--', ...args]
}

/**
 * The command the container will run, known before its root filesystem is (for its record):
 * Entrypoint + Cmd after the overrides, runc's default `sh` without either (runtime-config.ts).
 */
export function plannedCommand(config: ImageConfig, o: RunOverrides): string[] {
  const args = processArgs(withOverrides(config, o))
  const command = args.length > 0 ? args : ['sh']
  return o.init !== undefined ? withInit(command) : command
}
