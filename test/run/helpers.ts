/** Shared set-up for `lading run` tests: a temp store holding the Debian fixture images. */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { tempDir, type AfterHook } from '../fixtures/temp.js'
import { lading, ladingOk, type CliResult } from '../helpers/cli.js'
import { findTool, requireTool, inCI } from '../helpers/tools.js'

export const FIXTURE_LAYOUT = path.join(process.env.LADING_FIXTURES ?? '/var/tmp/lading-fixtures', 'layout')
/** The names the fixture images get in a store (image-name.ts: localhost/<dir>:<tag>). */
export const MINBASE = 'localhost/layout:minbase'
export const LAYERED = 'localhost/layout:layered'

/** Whether the set-up of canRun holds (for before() hooks, which cannot skip). */
export function runnable(): boolean {
  return process.getuid?.() === 0 && findTool('runc') !== undefined && existsSync(path.join(FIXTURE_LAYOUT, 'index.json'))
}

/** Skip (or fail under CI=true) unless root, runc and the fixtures are there. */
export function canRun(t: TestContext): boolean {
  if (!requireTool(t, 'runc')) return false
  for (const [ok, why] of [
    [process.getuid?.() === 0, 'needs root (runc, overlay mounts)'],
    [existsSync(path.join(FIXTURE_LAYOUT, 'index.json')), `fixtures not built (${FIXTURE_LAYOUT}; bash scripts/fixtures.sh)`],
  ] as const) {
    if (ok) continue
    if (inCI()) throw new Error(`${why}, and CI=true forbids skipping`)
    t.skip(why)
    return false
  }
  return true
}

export interface TestStore {
  dir: string
  run(args: string[], opts?: Parameters<typeof lading>[1]): CliResult
  ok(args: string[]): CliResult
  /** Pull fixture images (`minbase`, `layered`) into the store, none of their layers unpacked. */
  pull(tags: string[]): void
}

/**
 * A fresh store in a temp dir with the fixture images `tags` pulled, removed by `hook`'s after
 * (a test's `t`, or `{ after }` in a suite's body, whose `before` then pulls: making the store is
 * cheap, so a suite that cannot run only makes an empty directory).
 */
export function makeStore(hook: AfterHook, tags: string[] = []): TestStore {
  // Registered before the directory's own removal (hooks run in order): containers a failed test
  // left are deleted and their rootfs unmounted before the tree goes.
  hook.after(() => {
    for (const id of existsSync(path.join(dir, 'containers')) ? readdirSync(path.join(dir, 'containers')) : []) {
      spawnSync('runc', ['--root', path.join(dir, 'runc'), 'delete', '--force', id], { stdio: 'ignore' })
      spawnSync('umount', ['-l', path.join(dir, 'containers', id, 'rootfs')], { stdio: 'ignore' })
    }
  })
  const dir = tempDir(hook, { prefix: 'lading-run-store-' })
  const withStore = (args: string[]): string[] => {
    // --store goes after the (sub)command's verbs: the first argument not naming a noun.
    const i = args[0] === 'container' || args[0] === 'image' || args[0] === 'store' ? 2 : 1
    return [...args.slice(0, i), '--store', dir, ...args.slice(i)]
  }
  const store: TestStore = {
    dir,
    run: (args, opts) => lading(withStore(args), opts),
    ok: (args) => ladingOk(withStore(args)),
    pull: (pulled) => {
      for (const tag of pulled) ladingOk(withStore(['pull', '-q', `oci:${FIXTURE_LAYOUT}:${tag}`]))
    },
  }
  store.pull(tags)
  return store
}

/** The unpacked layer directories of a store (`<alg>:<hex>`). */
export function unpackedLayers(store: string): string[] {
  const root = path.join(store, 'layers')
  if (!existsSync(root)) return []
  return readdirSync(root)
    .flatMap((alg) =>
      readdirSync(path.join(root, alg))
        .filter((n) => /^[0-9a-f]{64}$/.test(n))
        .map((n) => `${alg}:${n}`),
    )
    .sort()
}

/** Mount points under `dir` (from /proc/self/mountinfo). */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir + '/'))
}
