/**
 * Editing an image configuration the way `umoci config` does (and `lading config` exposes):
 * a pure function from the old config to the new one, so library users get the same rules.
 * Field meanings are image-spec config.md §Properties.
 */
import { LadingError } from '../errors.js'
import type { History, ImageConfig } from './types.js'
import { rfc3339Problem } from './validate.js'

export interface ConfigEdit {
  user?: string | undefined
  exposedPorts?: string[] | undefined
  env?: string[] | undefined
  /** Replaces Entrypoint when given (umoci: every --config.entrypoint is one element). */
  entrypoint?: string[] | undefined
  cmd?: string[] | undefined
  volumes?: string[] | undefined
  labels?: string[] | undefined
  workingDir?: string | undefined
  stopSignal?: string | undefined
  created?: string | undefined
  author?: string | undefined
  os?: string | undefined
  architecture?: string | undefined
  variant?: string | undefined
  /** `--clear` keys, applied before additions (umoci's order). */
  clear?: string[] | undefined
  /** Omit to record no history entry. */
  history?: History | undefined
}

export const CLEARABLE = [
  'config.labels',
  'config.volume',
  'config.env',
  'config.exposedports',
  'config.entrypoint',
  'config.cmd',
  'manifest.annotations',
] as const

/** A date-time option as config.md §created requires it (RFC 3339); USAGE error otherwise. */
export function assertRfc3339(value: string, what: string): string {
  const why = rfc3339Problem(value)
  if (why) throw new LadingError('USAGE', `${what}: ${why}`)
  return value
}

function keyValue(s: string, what: string): [string, string] {
  const i = s.indexOf('=')
  if (i <= 0) throw new LadingError('USAGE', `${what}: expected KEY=VALUE, got ${JSON.stringify(s)}`)
  return [s.slice(0, i), s.slice(i + 1)]
}

/** `80`, `80/tcp`, `53/udp`, `8080/sctp` (config.md §ExposedPorts). */
export function normalizePort(p: string): string {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(p)
  if (!m || Number(m[1]) > 65535) throw new LadingError('USAGE', `--config.exposedports: ${JSON.stringify(p)} is not PORT[/tcp|udp|sctp]`)
  return `${m[1]}/${m[2] ?? 'tcp'}`
}

/** Split `--manifest.annotation K=V` options into a record, validating the form. */
export function parseAnnotations(items: string[] | undefined, what = '--manifest.annotation'): Record<string, string> {
  const out: Record<string, string> = {}
  for (const s of items ?? []) {
    const [k, v] = keyValue(s, what)
    out[k] = v
  }
  return out
}

/**
 * Returns a new config (the input is not modified). Env entries replace an existing entry with
 * the same name, as umoci and Docker do; labels, volumes and ports merge.
 */
export function editConfig(old: ImageConfig, edit: ConfigEdit): ImageConfig {
  const cfg: ImageConfig = structuredClone(old)
  const c = { ...(cfg.config ?? {}) }
  for (const key of edit.clear ?? []) {
    if (!(CLEARABLE as readonly string[]).includes(key)) {
      throw new LadingError('USAGE', `--clear: unknown key ${JSON.stringify(key)} (one of ${CLEARABLE.join(', ')})`)
    }
    if (key === 'config.labels') delete c.Labels
    if (key === 'config.volume') delete c.Volumes
    if (key === 'config.env') delete c.Env
    if (key === 'config.exposedports') delete c.ExposedPorts
    if (key === 'config.entrypoint') delete c.Entrypoint
    if (key === 'config.cmd') delete c.Cmd
  }
  if (edit.user !== undefined) c.User = edit.user
  if (edit.workingDir !== undefined) c.WorkingDir = edit.workingDir
  if (edit.stopSignal !== undefined) c.StopSignal = edit.stopSignal
  if (edit.entrypoint?.length) c.Entrypoint = [...edit.entrypoint]
  if (edit.cmd?.length) c.Cmd = [...edit.cmd]
  if (edit.env?.length) {
    const env = [...(c.Env ?? [])]
    for (const e of edit.env) {
      const [name] = keyValue(e, '--config.env')
      const at = env.findIndex((x) => x === name || x.startsWith(name + '='))
      if (at >= 0) env[at] = e
      else env.push(e)
    }
    c.Env = env
  }
  if (edit.exposedPorts?.length) {
    c.ExposedPorts = { ...(c.ExposedPorts ?? {}) }
    for (const p of edit.exposedPorts) c.ExposedPorts[normalizePort(p)] = {}
  }
  if (edit.volumes?.length) {
    c.Volumes = { ...(c.Volumes ?? {}) }
    for (const v of edit.volumes) {
      if (!v.startsWith('/')) throw new LadingError('USAGE', `--config.volume: ${JSON.stringify(v)} must be an absolute path`)
      c.Volumes[v] = {}
    }
  }
  if (edit.labels?.length) c.Labels = { ...(c.Labels ?? {}), ...parseAnnotations(edit.labels, '--config.label') }
  cfg.config = c
  if (edit.created !== undefined) cfg.created = assertRfc3339(edit.created, '--created')
  if (edit.author !== undefined) cfg.author = edit.author
  if (edit.os !== undefined) cfg.os = edit.os
  if (edit.architecture !== undefined) cfg.architecture = edit.architecture
  if (edit.variant !== undefined) {
    if (edit.variant === '') delete cfg.variant
    else cfg.variant = edit.variant
  }
  if (edit.history) {
    if (edit.history.created !== undefined) assertRfc3339(edit.history.created, '--history.created')
    cfg.history = [...(cfg.history ?? []), edit.history]
  }
  return cfg
}

/**
 * The config of a new empty image (what `umoci new` writes): no layers, no history, an empty
 * runtime config, the given platform.
 */
export function newImageConfig(platform: { os: string; architecture: string; variant?: string }, created = new Date().toISOString()): ImageConfig {
  const cfg: ImageConfig = { created, architecture: platform.architecture, os: platform.os, config: {}, rootfs: { type: 'layers', diff_ids: [] } }
  if (platform.variant) cfg.variant = platform.variant
  return cfg
}
