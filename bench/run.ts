/**
 * `npm run bench`: Lading and its peer tools (umoci, skopeo, GNU tar, sha256sum) side by side in ONE
 * run, interleaved (lading, peer, lading, peer, ...), on tmpfs (/dev/shm) and on disk (/var/tmp; not
 * for ls/stat and push, whose medium does not matter).
 * Prints a table: medians, the median of the per-pair ratios (lading/peer, so drift of this noisy,
 * rate-limited machine hits both sides of a pair alike), peak RSS, the target and whether it is met.
 *
 * Options: --quick (2 repetitions, tmpfs only), --reps N (default 5; push and pull ask for at least
 * 15 outside --quick), --only REGEX (scenario names),
 * --medium shm|disk|all (default all; shm with --quick), --cpu-prof (one extra profiled lading run per scenario, hot functions printed),
 * --json FILE (also write the results there; results are never committed).
 *
 * Between timed runs on disk, outputs are set aside rather than removed (lib/discard.ts), so a run
 * does not pay for the inodes the previous one freed; the trash is emptied when the run ends.
 * A scenario whose lading command is not in `lading --help` prints "not available"; nothing is faked.
 * The fixtures come from scripts/fixtures.sh (built on first use; needs root).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { measure, median, max, run, CommandFailed, type Measurement } from './lib/measure.js'
import { summarizeProfile } from './lib/cpu-profile.js'
import { emptyTrash } from './lib/discard.js'
import { runScenarios } from './run-scenarios.js'
import { scenarios, type Scenario, type Target, type Medium, type Fixtures, type Side } from './scenarios.js'
import { runServeBench } from './serve.js'
import { buildScenarios } from './build.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
/** The `lading` command as users run it (bin/lading: the start-up snapshot when built). */
const BIN = path.join(repo, 'bin', 'lading')
/** The plain-module entry, for --cpu-prof runs (Node's flags go before the script). */
const CLI = path.join(repo, 'build', 'src', 'cli', 'main.js')

interface Options {
  reps: number
  only?: RegExp
  media?: Array<Medium['name']>
  cpuProf: boolean
  json?: string
  quick: boolean
}

function parseArgs(argv: string[]): Options {
  const o: Options = { reps: 5, cpuProf: false, quick: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) usage(`${a} needs a value`)
      return v
    }
    if (a === '--quick') {
      o.quick = true
      o.reps = 2
    } else if (a === '--reps') o.reps = Number.parseInt(value(), 10)
    else if (a === '--only') o.only = new RegExp(value(), 'i')
    else if (a === '--medium') {
      const m = value()
      if (m !== 'shm' && m !== 'disk' && m !== 'all') usage(`--medium must be shm, disk or all, not ${m}`)
      o.media = m === 'all' ? ['shm', 'disk'] : [m]
    } else if (a === '--cpu-prof') o.cpuProf = true
    else if (a === '--json') o.json = value()
    else usage(`unknown argument ${a}`)
  }
  if (!(o.reps >= 1)) usage('--reps must be a positive integer')
  // --quick is a check of the harness and a first look, inside 5 minutes: tmpfs only unless asked.
  o.media ??= o.quick ? ['shm'] : ['shm', 'disk']
  return o
}

function usage(why: string): never {
  process.stderr.write(`bench: ${why}\nusage: node build/bench/run.js [--quick] [--reps N] [--only REGEX] [--medium shm|disk|all] [--cpu-prof] [--json FILE]\n`)
  process.exit(2)
}

function fixtures(): Fixtures {
  const r = spawnSync('bash', [path.join(repo, 'scripts', 'fixtures.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  if (r.status !== 0) {
    process.stderr.write('bench: scripts/fixtures.sh failed; the benchmarks need its Debian image\n')
    process.exit(1)
  }
  const kv = Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/=(.*)/s).slice(0, 2)),
  )
  return { layout: kv.LAYOUT, rootfsTar: kv.ROOTFS_TAR }
}

/** Command names listed under "Commands:" in `lading --help`. */
function ladingCommands(): Set<string> {
  const r = spawnSync(BIN, ['--help'], { encoding: 'utf8' })
  const names = new Set<string>()
  let inCommands = false
  for (const line of (r.stdout ?? '').split('\n')) {
    if (/^Commands:/.test(line)) {
      inCommands = true
      continue
    }
    if (inCommands) {
      const m = /^ {2}([a-z][\w-]*)/.exec(line)
      if (m?.[1]) names.add(m[1])
      else if (line.trim() && !line.startsWith(' ')) inCommands = false
    }
  }
  return names
}

interface Row {
  scenario: string
  medium: string
  lading: string
  peer: string
  ladingMs?: number
  peerMs?: number
  ratio?: number
  /** Pairs the ratio is the median of. */
  pairs?: number
  ladingRssMiB?: number | undefined
  peerRssMiB?: number | undefined
  target: string
  met: string
  note?: string
}

function targetText(t: Target | undefined, memMaxMiB: number | undefined): string {
  const parts: string[] = []
  if (t?.kind === 'ratio') parts.push(`${t.strict ? '<' : '<='} ${t.max}x`)
  if (t?.kind === 'ms') parts.push(`< ${t.max} ms`)
  if (memMaxMiB) parts.push(`RSS < ${memMaxMiB} MB`)
  return parts.join(', ') || '-'
}

function judge(t: Target | undefined, memMaxMiB: number | undefined, ladingMs: number, ratio: number, rss: number | undefined): string {
  const misses: string[] = []
  if (t?.kind === 'ratio' && (t.strict ? ratio >= t.max : ratio > t.max)) misses.push('time')
  if (t?.kind === 'ms' && ladingMs >= t.max) misses.push('time')
  if (memMaxMiB && rss !== undefined && rss >= memMaxMiB) misses.push('memory')
  if (!t && !memMaxMiB) return '-'
  return misses.length ? `NO (${misses.join(', ')})` : 'yes'
}

function loadLine(): string {
  return `load average ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')} on ${os.availableParallelism()} cores`
}

function syncDisk(medium: Medium): void {
  // Flush what setup wrote (and what the last run wrote) so one run's writeback is not billed to the next.
  if (medium.name === 'disk') run(['sync'])
}

async function timed(side: Side, medium: Medium): Promise<Measurement> {
  await side.setup?.()
  syncDisk(medium)
  return measure(side.argv())
}

function profileArgv(args: string[], dir: string): string[] {
  return [process.execPath, '--cpu-prof', '--cpu-prof-dir', dir, CLI, ...args]
}

async function runScenario(s: Scenario, opts: Options, available: Set<string>): Promise<Row[]> {
  const base = (peer: string, target: Target | undefined): Row => ({
    scenario: s.name,
    medium: s.medium.name,
    lading: s.lading.label,
    peer,
    target: targetText(target, s.memMaxMiB),
    met: '-',
  })
  const needs = [s.lading, ...s.comparisons.map((c) => c.peer)].flatMap((side) => side.needs ?? [])
  const missing = [...new Set(needs)].filter((c) => !available.has(c))
  if (missing.length) {
    return s.comparisons.map((c) => ({ ...base(c.peer.label, c.target), met: 'not available', note: `lading ${missing.join(', ')} not in lading --help` }))
  }
  const lad: Measurement[] = []
  // One record per comparison. A failing peer spoils only its own comparison; a failing lading run
  // spoils the scenario.
  const sides = s.comparisons.map((c) => ({ c, runs: [] as Measurement[], failed: undefined as string | undefined }))
  const why = (e: unknown): string => (e instanceof CommandFailed ? e.message : (e as Error).message)
  try {
    await s.prepare?.()
    const reps = opts.quick ? opts.reps : Math.max(opts.reps, s.minReps ?? 0)
    for (let i = 0; i < reps; i++) {
      lad.push(await timed(s.lading, s.medium))
      if (i === 0) await s.check?.()
      await s.lading.teardown?.()
      for (const side of sides) {
        if (side.failed) continue
        const peer = side.c.peer
        try {
          side.runs.push(await timed(peer, s.medium))
        } catch (e) {
          side.failed = why(e)
        }
        await peer.teardown?.()
      }
    }
    if (opts.cpuProf) {
      const dir = mkdtempSync(path.join(s.medium.dir, 'cpuprof-'))
      await s.lading.setup?.()
      await measure(profileArgv(s.lading.args(), dir))
      for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
        const { totalMs, spots } = summarizeProfile(path.join(dir, f), 10)
        process.stdout.write(`\n  cpu profile of ${s.lading.label} (${s.name}, ${s.medium.name}): ${totalMs.toFixed(0)} ms sampled on the main thread\n`)
        for (const h of spots) process.stdout.write(`    ${(h.share * 100).toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(6)} ms  ${h.name}\n`)
      }
      rmSync(dir, { recursive: true, force: true })
    }
  } catch (e) {
    return s.comparisons.map((c) => ({ ...base(c.peer.label, c.target), met: 'FAILED', note: why(e) }))
  } finally {
    await s.cleanup?.()
  }
  return sides.map(({ c, runs, failed }) => {
    const ladingMs = median(lad.map((m) => m.ms))
    const ladingRssMiB = max(lad.map((m) => m.rssMiB))
    if (failed) return { ...base(c.peer.label, c.target), ladingMs, ladingRssMiB, met: 'peer FAILED', note: failed }
    // A peer that never failed ran once after each lading run, so runs[i] pairs with lad[i].
    const ratio = median(lad.map((m, i) => m.ms / runs[i]!.ms))
    return {
      ...base(c.peer.label, c.target),
      ladingMs,
      peerMs: median(runs.map((m) => m.ms)),
      ratio,
      pairs: lad.length,
      ladingRssMiB,
      peerRssMiB: max(runs.map((m) => m.rssMiB)),
      met: judge(c.target, s.memMaxMiB, ladingMs, ratio, ladingRssMiB),
    }
  })
}

function fmtMs(ms: number | undefined): string {
  if (ms === undefined) return '-'
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`
}

function printTable(rows: Row[]): void {
  const head = ['scenario', 'medium', 'lading', 'lading median', 'peer', 'peer median', 'ratio', 'lading RSS', 'peer RSS', 'target', 'met']
  const cells = rows.map((r) => [
    r.scenario,
    r.medium,
    r.lading,
    fmtMs(r.ladingMs),
    r.peer,
    fmtMs(r.peerMs),
    r.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}x`,
    r.ladingRssMiB === undefined ? '-' : `${r.ladingRssMiB.toFixed(0)} MB`,
    r.peerRssMiB === undefined ? '-' : `${r.peerRssMiB.toFixed(0)} MB`,
    r.target,
    r.met,
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]?.length ?? 0)))
  const line = (c: string[]): string =>
    c
      .map((x, i) => x.padEnd(widths[i] ?? 0))
      .join(' | ')
      .trimEnd()
  process.stdout.write('\n' + line(head) + '\n' + widths.map((w) => '-'.repeat(w)).join('-|-') + '\n')
  for (const c of cells) process.stdout.write(line(c) + '\n')
  const notes = rows.filter((r) => r.note)
  if (notes.length) {
    process.stdout.write('\n')
    for (const r of notes) process.stdout.write(`${r.scenario} [${r.medium}] vs ${r.peer}: ${r.met}: ${r.note}\n`)
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2))
  const started = Date.now()
  const fx = fixtures()
  const available = ladingCommands()
  const ladingArgv = [BIN]
  process.stdout.write(`lading commands available: ${[...available].sort().join(' ') || '(none)'}\n`)
  process.stdout.write(
    `repetitions: ${opts.reps}${opts.quick ? '' : ' (more where a scenario asks for them)'}, interleaved; ratio = median over pairs of lading/peer wall time\n`,
  )
  process.stdout.write(`${loadLine()}\n`)
  const rows: Row[] = []
  const workDirs: string[] = []
  const cleanupAll = (): void => {
    for (const d of workDirs) rmSync(d, { recursive: true, force: true })
    emptyTrash()
  }
  process.on('SIGINT', () => {
    cleanupAll()
    process.exit(130)
  })
  try {
    for (const name of opts.media ?? []) {
      const parent = name === 'shm' ? '/dev/shm' : '/var/tmp'
      mkdirSync(parent, { recursive: true })
      const medium: Medium = { name, dir: mkdtempSync(path.join(parent, 'lading-bench-')) }
      workDirs.push(medium.dir)
      for (const s of [
        ...scenarios({ lading: ladingArgv, fixtures: fx }, medium),
        ...runScenarios({ lading: ladingArgv, fixtures: fx }, medium),
        ...buildScenarios({ lading: ladingArgv, fixtures: fx }, medium),
      ]) {
        if (opts.only && !opts.only.test(s.name)) continue
        if (s.shmOnly && name !== 'shm') continue
        const t0 = Date.now()
        const got = await runScenario(s, opts, available)
        rows.push(...got)
        for (const r of got) {
          process.stdout.write(
            `[${r.medium}] ${r.scenario}: ${fmtMs(r.ladingMs)} vs ${r.peer} ${fmtMs(r.peerMs)}` +
              `${r.ratio === undefined ? '' : ` = ${r.ratio.toFixed(2)}x`}${r.pairs !== undefined && r.pairs !== opts.reps ? ` (${r.pairs} pairs)` : ''}` +
              `${r.ladingRssMiB === undefined ? '' : `, RSS ${r.ladingRssMiB.toFixed(0)} vs ${r.peerRssMiB?.toFixed(0) ?? '-'} MB`}` +
              ` -> ${r.met}${r.note ? ` (${r.note})` : ''} [${((Date.now() - t0) / 1000).toFixed(0)} s]\n`,
          )
        }
      }
      rmSync(medium.dir, { recursive: true, force: true })
    }
    // The registry server against docker-registry (bench/serve.ts prints its own table), on tmpfs.
    if (available.has('serve') && (!opts.only || opts.only.test('serve'))) {
      const dir = mkdtempSync(path.join('/dev/shm', 'lading-bench-serve-'))
      workDirs.push(dir)
      await runServeBench({ lading: ladingArgv, layout: fx.layout, dir, reps: opts.reps, quick: opts.quick })
    }
  } finally {
    cleanupAll()
  }
  printTable(rows)
  process.stdout.write(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s; ${loadLine()}\n`)
  const [load1 = 0] = os.loadavg()
  if (load1 > os.availableParallelism()) {
    process.stdout.write('note: other processes competed for the CPUs during this run: absolute times are inflated; the paired ratios less so\n')
  }
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ reps: opts.reps, rows }, null, 2) + '\n')
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`)
  process.exit(1)
})
