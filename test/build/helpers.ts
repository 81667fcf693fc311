/** Shared by the build tests: contexts written from a map, lading and buildah builds, comparisons. */
import path from 'node:path'
import { unpackRootfs } from '../../src/bundle/unpack.js'
import { Layout } from '../../src/store/layout.js'
import { resolveImage } from '../../src/store/resolve.js'
import type { ImageConfig } from '../../src/spec/types.js'
import { diffTrees, treeOf, type NodeRecord } from '../fixtures/tree.js'
import { lading, run, type CliResult } from '../helpers/cli.js'

export function ladingBuild(args: string[], env: Record<string, string> = {}): CliResult {
  return lading(['build', ...args], { env: { ...process.env, ...env } })
}

export function ladingBuildOk(args: string[], env: Record<string, string> = {}): CliResult {
  const r = ladingBuild(args, env)
  if (r.status !== 0) throw new Error(`lading build ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return r
}

/** buildah bud with its own storage under `root` (vfs), pushing to `dest` (an oci: reference). */
export function buildahBuild(root: string, args: string[]): CliResult {
  const r = run('buildah', ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'runroot'), '--storage-driver', 'vfs', 'bud', '--layers=false', ...args], { env: { ...process.env, BUILDAH_ISOLATION: 'oci' } })
  if (r.status !== 0) throw new Error(`buildah bud ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return r
}

export async function imageConfig(dir: string, tag: string): Promise<ImageConfig> {
  return (await resolveImage(await Layout.open(dir), { tag }, 'any')).config
}

export async function rootfsTree(dir: string, tag: string, into: string): Promise<Map<string, NodeRecord>> {
  await unpackRootfs(into, { layout: await Layout.open(dir), image: tag })
  return treeOf(into, { mtimes: false })
}

/**
 * Paths buildah 1.28 leaves behind that are not the Dockerfile's doing: an empty /etc/hosts (and
 * /etc/resolv.conf, /etc/hostname) it bind-mounts during RUN. Docker/BuildKit leave none.
 */
export const BUILDAH_RUN_ARTIFACTS = ['etc/hosts', 'etc/resolv.conf', 'etc/hostname', 'run/.containerenv']

/** Differences between two root filesystems, ignoring buildah's RUN artifacts that lading lacks. */
export function compareTrees(a: Map<string, NodeRecord>, b: Map<string, NodeRecord>): string[] {
  for (const p of BUILDAH_RUN_ARTIFACTS) {
    const rb = b.get(p)
    if (!a.has(p) && rb && rb.size === 0) b.delete(p)
  }
  return diffTrees(a, b, ['lading', 'buildah'])
}

export const CONFIG_FIELDS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'Labels', 'ExposedPorts', 'Volumes', 'StopSignal', 'Healthcheck'] as const

/** The compared config fields (buildah's own version label left out). */
export function comparableConfig(c: ImageConfig): Record<string, unknown> {
  const cc = (c.config ?? {}) as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const f of CONFIG_FIELDS) {
    let v = cc[f]
    if (f === 'Labels' && v && typeof v === 'object') {
      const { 'io.buildah.version': _drop, ...rest } = v as Record<string, string>
      v = Object.keys(rest).length ? rest : undefined
    }
    if (Array.isArray(v) && v.length === 0) v = undefined
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) v = undefined
    if (v !== undefined && v !== '' && v !== null) out[f] = v
  }
  return out
}
