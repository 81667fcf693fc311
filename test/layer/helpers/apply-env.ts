/** Shared set-up for applyLayer tests: applying in-code tars, tool checks. */
import { spawnSync } from 'node:child_process'
import type { TestContext } from 'node:test'
import { applyLayer, type ApplyOptions, type ApplyStats } from '../../../src/layer/apply.js'
import { buildTar, streamOf, type TarSpec } from './tar-builder.js'

export async function applySpecs(root: string, specs: TarSpec[], opts: ApplyOptions = {}): Promise<ApplyStats> {
  return applyLayer(root, streamOf(buildTar(specs), 1000), opts)
}

/** Skip (locally) or fail (CI=true) when a condition for the test is not met. */
export function need(t: TestContext, ok: boolean, why: string): boolean {
  if (ok) return true
  if (process.env.CI === 'true') throw new Error(`${why}, and CI=true forbids skipping`)
  t.skip(why)
  return false
}

export function isRoot(): boolean {
  return process.getuid?.() === 0
}

export function hasCommand(cmd: string, args: string[] = ['--version']): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' })
  return r.error === undefined
}
