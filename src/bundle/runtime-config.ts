/**
 * Image config -> runtime config.json, per image-spec conversion.md. The "default generated
 * runtime configuration" (conversion.md) is built from the image config alone; the Linux
 * defaults around it (namespaces, mounts, capabilities, masked paths) are implementation-defined
 * and chosen to equal what `runc spec` (and `runc spec --rootless`) write, so `runc run` works.
 *
 * Differences from umoci 0.4.7's config.json, each on purpose:
 * - process.terminal is false: a bundle is run by tools and tests without a tty, and runc refuses
 *   terminal:true without one (runtime-spec config.md §process: terminal is OPTIONAL, default false).
 * - Config.Volumes are not turned into tmpfs mounts: conversion.md §Optional Fields note 2 allows
 *   it ("need not use mountpoints"), and an empty tmpfs would hide what the image ships there.
 * - No TERM=xterm in env (it belongs with a terminal); PATH is added only when the image sets none
 *   (conversion.md §Verbatim Fields note 1: SHOULD NOT add a variable the image names).
 * - HOME from the passwd entry is added only when the image's Env has no HOME (same rule).
 * - org.opencontainers.image.author and the other implicit annotations are written only when
 *   the image has the field (umoci writes "author": "" for an absent author).
 * - additionalGids are not set for a numeric user or when a group is given (conversion.md
 *   §Config.User: SHOULD NOT modify them then).
 * - maskedPaths/readonlyPaths are runc 1.1's defaults (adds /proc/acpi, /proc/keys, masks
 *   /proc/asound), newer than umoci's copy of them.
 * - No inheritable capabilities: runc 1.1's `runc spec` dropped them (CVE-2022-29162: inheritable
 *   capabilities leaked into execve'd programs); bounding/effective/permitted/ambient are umoci's.
 * - hostname "lading" instead of "umoci-default" (runtime-spec config.md §Hostname: free text).
 * - ociVersion is the runtime-spec version this code follows, 1.0.2-dev as runc 1.1 writes it.
 */
import type { ImageConfig } from '../spec/types.js'
import { LadingError, quoteName } from '../errors.js'
import type { RuntimeIdMapping, RuntimeMount, RuntimeSpec } from './runtime-types.js'
import { resolveUser, type RootFileReader } from './user.js'

export interface IdMap {
  containerId: number
  hostId: number
  size: number
}

export interface RuntimeConfigOptions {
  /** Reads files of the unpacked rootfs, staying inside it (see root-file.ts). */
  readRootFile?: RootFileReader
  /** Rootless variant: user namespace, no network namespace, sysfs bind-mounted read-only. */
  rootless?: boolean
  /** User namespace mappings for rootless (default: container 0 -> the current uid/gid, size 1). */
  uidMap?: IdMap[]
  gidMap?: IdMap[]
  /** The bundle's root.path (default "rootfs"). */
  rootPath?: string
}

export const RUNTIME_SPEC_VERSION = '1.0.2-dev'
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Annotation keys of conversion.md §Annotation Fields and §Config.ExposedPorts. */
export const RuntimeAnnotation = {
  Os: 'org.opencontainers.image.os',
  Architecture: 'org.opencontainers.image.architecture',
  Variant: 'org.opencontainers.image.variant',
  OsVersion: 'org.opencontainers.image.os.version',
  OsFeatures: 'org.opencontainers.image.os.features',
  Author: 'org.opencontainers.image.author',
  Created: 'org.opencontainers.image.created',
  StopSignal: 'org.opencontainers.image.stopSignal',
  ExposedPorts: 'org.opencontainers.image.exposedPorts',
} as const

/** runc's default capability set (`runc spec`). */
export const DEFAULT_CAPABILITIES = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']

const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
]
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']

function defaultMounts(rootless: boolean): RuntimeMount[] {
  const mounts: RuntimeMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    // gid=5 (tty) cannot be mapped in a rootless user namespace of size 1.
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', ...(rootless ? [] : ['gid=5'])],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  ]
  if (rootless) {
    // Without its own network namespace a container may not mount sysfs (the kernel ties sysfs
    // to the netns owner), so bind the host's read-only, and share its resolv.conf.
    mounts.push({ destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] })
    mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: '/etc/resolv.conf', options: ['rbind', 'ro'] })
  } else {
    mounts.push({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] })
    mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] })
  }
  return mounts
}

function toRuntimeMappings(maps: IdMap[] | undefined, current: number): RuntimeIdMapping[] {
  if (!maps || maps.length === 0) return [{ containerID: 0, hostID: current, size: 1 }]
  return maps.map((m) => ({ containerID: m.containerId, hostID: m.hostId, size: m.size }))
}

/** The implementation-defined Linux defaults alone (a config.json with `sh` as the process). */
export function defaultRuntimeSpec(opts: Pick<RuntimeConfigOptions, 'rootless' | 'uidMap' | 'gidMap' | 'rootPath'> = {}): RuntimeSpec {
  const rootless = opts.rootless ?? false
  const caps = [...DEFAULT_CAPABILITIES]
  const spec: RuntimeSpec = {
    ociVersion: RUNTIME_SPEC_VERSION,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: [DEFAULT_PATH],
      cwd: '/',
      capabilities: { bounding: caps, effective: [...caps], permitted: [...caps], ambient: [...caps] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: opts.rootPath ?? 'rootfs' },
    hostname: 'lading',
    mounts: defaultMounts(rootless),
    linux: {
      namespaces: rootless
        ? [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'user' }]
        : [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  }
  if (rootless) {
    // runtime-spec config-linux.md §User namespace mappings. Device cgroup rules need
    // privileges a rootless runtime does not have, so none are written.
    spec.linux.uidMappings = toRuntimeMappings(opts.uidMap, process.getuid?.() ?? 0)
    spec.linux.gidMappings = toRuntimeMappings(opts.gidMap, process.getgid?.() ?? 0)
  } else {
    spec.linux.resources = { devices: [{ allow: false, access: 'rwm' }] }
  }
  return spec
}

export function envName(entry: string): string {
  const i = entry.indexOf('=')
  return i < 0 ? entry : entry.slice(0, i)
}

/** conversion.md §Verbatim Fields note 2 with config.md's Entrypoint/Cmd: Entrypoint then Cmd. */
export function processArgs(config: ImageConfig): string[] {
  const c = config.config ?? {}
  const entrypoint = Array.isArray(c.Entrypoint) ? c.Entrypoint : []
  const cmd = Array.isArray(c.Cmd) ? c.Cmd : []
  return [...entrypoint, ...cmd]
}

/**
 * conversion.md §Annotation Fields, §Config.ExposedPorts, §Annotations: implicit annotations
 * from the config's fields, then Config.Labels on top (labels MUST take precedence).
 */
export function runtimeAnnotations(config: ImageConfig): Record<string, string> {
  const a: Record<string, string> = {}
  const c = config.config ?? {}
  if (typeof config.os === 'string') a[RuntimeAnnotation.Os] = config.os
  if (typeof config.architecture === 'string') a[RuntimeAnnotation.Architecture] = config.architecture
  if (typeof config.variant === 'string') a[RuntimeAnnotation.Variant] = config.variant
  if (typeof config['os.version'] === 'string') a[RuntimeAnnotation.OsVersion] = config['os.version']
  // The spec names no encoding for the os.features array: a comma list, like exposedPorts.
  if (Array.isArray(config['os.features'])) a[RuntimeAnnotation.OsFeatures] = config['os.features'].join(',')
  if (typeof config.author === 'string') a[RuntimeAnnotation.Author] = config.author
  if (typeof config.created === 'string') a[RuntimeAnnotation.Created] = config.created
  if (typeof c.StopSignal === 'string') a[RuntimeAnnotation.StopSignal] = c.StopSignal
  if (c.ExposedPorts && typeof c.ExposedPorts === 'object') {
    const ports = Object.keys(c.ExposedPorts)
    if (ports.length > 0) a[RuntimeAnnotation.ExposedPorts] = ports.join(',')
  }
  if (c.Labels && typeof c.Labels === 'object') {
    for (const [k, v] of Object.entries(c.Labels)) if (typeof v === 'string') a[k] = v
  }
  return a
}

/**
 * The runtime config.json for an image: conversion.md's generated fields over the Linux
 * defaults. `readRootFile` reads /etc/passwd and /etc/group of the unpacked rootfs (required
 * when Config.User names a user or group; without it only numeric users resolve).
 */
export async function runtimeConfig(config: ImageConfig, opts: RuntimeConfigOptions = {}): Promise<RuntimeSpec> {
  const spec = defaultRuntimeSpec(opts)
  const c = config.config ?? {}

  // conversion.md §Verbatim Fields: Env verbatim; we MAY add variables the image does not name.
  const env = Array.isArray(c.Env) ? c.Env.filter((e): e is string => typeof e === 'string') : []
  const names = new Set(env.map(envName))
  const processEnv = [...env]
  if (!names.has('PATH')) processEnv.unshift(DEFAULT_PATH)

  // runtime-spec config.md §process: args needs at least one entry on POSIX. With neither
  // Entrypoint nor Cmd the process is implementation-defined: keep runc's default `sh`, as umoci does.
  const args = processArgs(config)
  if (args.length > 0) spec.process.args = args
  spec.process.cwd = typeof c.WorkingDir === 'string' && c.WorkingDir !== '' ? c.WorkingDir : '/'
  if (!spec.process.cwd.startsWith('/')) {
    // runtime-spec config.md §process: cwd MUST be an absolute path.
    throw new LadingError('INVALID_CONFIG', `image config: /config/WorkingDir: ${quoteName(c.WorkingDir)} is not an absolute path`)
  }

  // conversion.md §Parsed Fields: Config.User
  const read: RootFileReader = opts.readRootFile ?? (async () => undefined)
  const resolved = await resolveUser(typeof c.User === 'string' ? c.User : undefined, read)
  spec.process.user = resolved.user
  if (resolved.home !== undefined && !names.has('HOME')) processEnv.push(`HOME=${resolved.home}`)
  spec.process.env = processEnv

  const annotations = runtimeAnnotations(config)
  if (Object.keys(annotations).length > 0) spec.annotations = annotations
  return spec
}
