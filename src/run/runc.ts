/**
 * Calls to runc (runc(8), 1.1), with the store's own state root (`runc --root <store>/runc`) so
 * containers are visible to every `lading` invocation that uses the store, and to nobody else's.
 * The container's process state (running, stopped, its pid) is always asked of runc, never
 * remembered by Lading.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process'
import { LadingError } from '../errors.js'

export interface RuncState {
  id: string
  pid: number
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped'
  bundle: string
}

const MAX_STATE_BYTES = 1024 * 1024

/** runc `state ID`, or undefined when runc has no such container. */
export function runcState(root: string, id: string): RuncState | undefined {
  const r = spawnSync('runc', ['--root', root, 'state', id], { encoding: 'utf8', maxBuffer: MAX_STATE_BYTES })
  if (r.error !== undefined) throw runcMissing(r.error)
  if (r.status !== 0) {
    if (/does not exist|not exist|container not found/i.test(r.stderr)) return undefined
    throw new LadingError('CONFLICT', `runc state ${id}: ${r.stderr.trim()}`)
  }
  try {
    const s = JSON.parse(r.stdout) as RuncState
    if (typeof s.status !== 'string') throw new Error('no status')
    return s
  } catch (e) {
    throw new LadingError('CONFLICT', `runc state ${id}: unreadable answer (${(e as Error).message})`, { cause: e })
  }
}

/** Send `signal` (a name like TERM or KILL, or a number) to the container's init; false if it is gone. */
export function runcKill(root: string, id: string, signal: string, all = false): boolean {
  const r = spawnSync('runc', ['--root', root, 'kill', ...(all ? ['--all'] : []), id, signal], { encoding: 'utf8' })
  if (r.error !== undefined) throw runcMissing(r.error)
  if (r.status === 0) return true
  if (/not running|does not exist|process already finished|container not found/i.test(r.stderr)) return false
  throw new LadingError('CONFLICT', `runc kill ${id} ${signal}: ${r.stderr.trim()}`)
}

/** `runc delete --force`: the container's runc state (and any process left) goes. */
export function runcDelete(root: string, id: string): void {
  const r = spawnSync('runc', ['--root', root, 'delete', '--force', id], { encoding: 'utf8' })
  if (r.error !== undefined) throw runcMissing(r.error)
  if (r.status !== 0 && !/does not exist|container not found/i.test(r.stderr)) throw new LadingError('CONFLICT', `runc delete ${id}: ${r.stderr.trim()}`)
}

/**
 * Start `runc run` for the bundle. In the foreground runc stays the parent of the container's
 * process: it passes its stdio through (or, with process.terminal, makes a pty and copies
 * between it and its own stdio, putting a terminal stdin in raw mode), forwards the signals it
 * receives to the container's init, and exits with the container's exit status (128+N for a
 * signal). Detached (`-d`) it returns once the process runs, which keeps the stdio it was given.
 */
export function runcRun(root: string, bundle: string, id: string, opts: { detach: boolean; stdio: StdioOptions }): ChildProcess {
  const args = ['--root', root, 'run', '--bundle', bundle, ...(opts.detach ? ['--detach'] : []), id]
  return spawn('runc', args, { stdio: opts.stdio })
}

function runcMissing(e: Error): LadingError {
  return new LadingError('NOT_FOUND', `runc could not be run (${e.message}); install runc (Debian: apt-get install runc)`, { cause: e })
}
