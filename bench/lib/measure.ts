/**
 * Running one command and measuring it: wall time from the parent (hrtime around the child's whole
 * life) and peak resident set size from GNU time (`/usr/bin/time -f %M`, the largest RSS among the
 * process and the children it waited for, in KiB). The time process itself adds about 1 ms; both
 * sides of every comparison pay it.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface Measurement {
  ms: number
  /** Peak RSS in MiB, undefined when GNU time is not installed. */
  rssMiB: number | undefined
}

export class CommandFailed extends Error {
  constructor(
    readonly argv: string[],
    readonly status: number | null,
    readonly stderr: string,
  ) {
    super(`${argv.join(' ')}: exit ${status}: ${firstLines(stderr)}`)
  }
}

function firstLines(s: string): string {
  const lines = s
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '')
  return lines.slice(0, 3).join(' | ').slice(0, 400)
}

const GNU_TIME = '/usr/bin/time'
export const haveGnuTime = existsSync(GNU_TIME)
const scratch = mkdtempSync(path.join(os.tmpdir(), 'lading-bench-time-'))
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }))

export interface RunOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Kill the command after this long (default 10 minutes): a benchmark must never hang. */
  timeoutMs?: number
}

/** The command and its arguments; an empty argv is a harness bug, said as such. */
export function splitArgv(argv: readonly string[]): [string, string[]] {
  const [cmd, ...args] = argv
  if (cmd === undefined) throw new Error('empty command line')
  return [cmd, args]
}

/** Runs argv to completion, measured. Throws CommandFailed on a non-zero exit. */
export async function measure(argv: string[], opts: RunOptions = {}): Promise<Measurement> {
  const rssFile = path.join(scratch, 'rss')
  rmSync(rssFile, { force: true })
  const [cmd, args] = splitArgv(haveGnuTime ? [GNU_TIME, '-f', '%M', '-o', rssFile, ...argv] : argv)
  const stderr: Buffer[] = []
  let stderrBytes = 0
  const start = process.hrtime.bigint()
  const status = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000)
    child.stderr.on('data', (b: Buffer) => {
      // Keep the head of stderr only: a chatty tool must not grow the harness's memory.
      if (stderrBytes < 64 * 1024) stderr.push(b)
      stderrBytes += b.length
    })
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  })
  const ms = Number(process.hrtime.bigint() - start) / 1e6
  if (status !== 0) throw new CommandFailed(argv, status, Buffer.concat(stderr).toString())
  let rssMiB: number | undefined
  if (haveGnuTime) {
    const kib = Number.parseInt(readFileSync(rssFile, 'utf8').trim().split('\n').pop() ?? '', 10)
    rssMiB = Number.isFinite(kib) ? kib / 1024 : undefined
  }
  return { ms, rssMiB }
}

/** Runs an untimed helper command (setup, cleanup); throws CommandFailed on failure. */
export function run(argv: string[], opts: RunOptions = {}): string {
  const [cmd, args] = splitArgv(argv)
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    maxBuffer: 64 * 1024 * 1024,
    timeout: opts.timeoutMs ?? 600_000,
  })
  if (r.error) throw r.error
  if (r.status !== 0) throw new CommandFailed(argv, r.status, r.stderr)
  return r.stdout
}

export function sh(script: string, opts: RunOptions = {}): string {
  return run(['bash', '-c', `set -euo pipefail; ${script}`], opts)
}

/** The median of a non-empty list (a scenario always has at least one repetition). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  const hi = s[mid]
  if (hi === undefined) throw new Error('median of an empty list')
  // mid >= 1 whenever the length is even and non-zero, so s[mid - 1] exists.
  return s.length % 2 ? hi : (s[mid - 1]! + hi) / 2
}

export function max(xs: Array<number | undefined>): number | undefined {
  const known = xs.filter((x): x is number => x !== undefined)
  return known.length ? Math.max(...known) : undefined
}
