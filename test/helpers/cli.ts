/** Run the built `lading` CLI as a user would, capturing output and exit status. */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process'
import { watch } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
/** The `lading` command as users run it: the start-up snapshot when built (src/cli/snapshot-entry.ts). */
export const binPath = path.join(repoRoot, 'bin/lading')
/** The plain-module entry (what bin/lading falls back to), for tests that give Node flags or hooks. */
export const cliPath = path.join(repoRoot, 'build/src/cli/main.js')

export interface CliResult {
  status: number | null
  stdout: string
  stderr: string
  stdoutBytes: Buffer
}

export function lading(args: string[], opts: SpawnSyncOptions = {}): CliResult {
  const r = spawnSync(binPath, args, { maxBuffer: 256 * 1024 * 1024, ...opts, env: { ...process.env, LADING_DEBUG: '', ...(opts.env ?? {}) } })
  const out = r.stdout as Buffer
  return { status: r.status, stdout: out.toString('utf8'), stderr: (r.stderr as Buffer).toString('utf8'), stdoutBytes: out }
}

/** Run and require success; the error message carries stderr for a readable failure. */
export function ladingOk(args: string[], opts: SpawnSyncOptions = {}): CliResult {
  const r = lading(args, opts)
  if (r.status !== 0) throw new Error(`lading ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return r
}

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): CliResult {
  const r = spawnSync(cmd, args, { maxBuffer: 256 * 1024 * 1024, ...opts })
  if (r.error) throw r.error
  const out = r.stdout as Buffer
  return { status: r.status, stdout: out.toString('utf8'), stderr: (r.stderr as Buffer).toString('utf8'), stdoutBytes: out }
}

export function runOk(cmd: string, args: string[], opts: SpawnSyncOptions = {}): CliResult {
  const r = run(cmd, args, opts)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return r
}

/**
 * `lading` without blocking the test's event loop (needed when the peer it talks to is a server
 * in this process), killed after `killAfterMs` (status null then): a hang fails the test instead
 * of stalling the suite.
 */
export function ladingAsync(args: string[], opts: { env?: NodeJS.ProcessEnv; killAfterMs?: number } = {}): Promise<CliResult & { ms: number }> {
  const start = Date.now()
  const child = spawn(binPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LADING_DEBUG: '', ...(opts.env ?? {}) } })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.on('data', (b: Buffer) => err.push(b))
  const killer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 60_000)
  return new Promise((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(killer)
      reject(e)
    })
    child.once('close', (status) => {
      clearTimeout(killer)
      const stdoutBytes = Buffer.concat(out)
      resolve({ status, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes, ms: Date.now() - start })
    })
  })
}

/** ladingAsync that requires success; the error message carries stderr, as ladingOk's does. */
export async function ladingAsyncOk(args: string[], opts: Parameters<typeof ladingAsync>[1] = {}): Promise<CliResult & { ms: number }> {
  const r = await ladingAsync(args, opts)
  if (r.status !== 0) throw new Error(`lading ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return r
}

/**
 * Run the plain-module CLI (`node main.js ARGS`) and send `signal` the moment a file whose name
 * `matches` appears in `dir`: a temp file being written, so the command is surely mid-write and
 * the file surely exists. `sent` is false when the command exited before any such file showed.
 */
export async function signalWhenFileAppears(
  args: string[],
  dir: string,
  matches: (name: string) => boolean,
  signal: NodeJS.Signals,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stderr: string; sent: boolean }> {
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  let sent = false
  const watcher = watch(dir, (_ev, name) => {
    if (!sent && typeof name === 'string' && matches(name)) {
      sent = true
      watcher.close()
      child.kill(signal)
    }
  })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  watcher.close()
  return { code, stderr, sent }
}
