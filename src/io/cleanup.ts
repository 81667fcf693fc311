/**
 * The process-wide cleanup registry: what an interrupted command must not leave behind.
 *
 * - Temp paths: every temp file (src/io/fs.ts tempPathFor) and temp directory (makeTempDir) is
 *   tracked from the moment its name is made until its writer renames or removes it
 *   (releaseTemp / removeTemp). On SIGINT/SIGTERM the CLI removes whatever is still tracked,
 *   synchronously, just before it exits, so no await can let a writer create one more file.
 * - Interrupt hooks: a running operation registers what stops it (close a copy's source and
 *   destination, abort an unpack through its AbortSignal); the CLI runs them first, bounded
 *   in time, then sweeps the temp paths.
 * - Leftovers of processes that did not get the chance (SIGKILL, a crash, power loss) carry
 *   their pid in their name; sweepAbandoned removes them on the next run that looks there,
 *   under the same rule gc applies (isAbandonedTemp in src/io/fs.ts).
 *
 * The state is module-level on purpose: a signal interrupts the whole process, not a command
 * object. It is empty at module load (the CLI's start-up snapshot captures it empty).
 */
import fs, { promises as fsp } from 'node:fs'
import path from 'node:path'
import { isErrno } from '../errors.js'

const tracked = new Set<string>()
const removing = new Map<string, Promise<void>>()
/** What was removed since the interruption began (a path counted once, whoever removed it). */
const removedWhileInterrupted = new Set<string>()
type Hook = () => Promise<string | void> | string | void
const hooks = new Set<Hook>()
let interrupting = false

/** Remember a temp path to remove if the process is interrupted before it is released. */
export function trackTemp(p: string): void {
  tracked.add(path.resolve(p))
}

/** The temp path was renamed into place (or is otherwise no longer ours to remove). */
export function releaseTemp(p: string): void {
  tracked.delete(path.resolve(p))
}

/**
 * Remove a temp file or directory (absent is fine) and stop tracking it. Two removals of one
 * path at once (a destination closed twice) share one: the second must not return before the
 * path is gone.
 */
export function removeTemp(p: string): Promise<void> {
  const abs = path.resolve(p)
  let removal = removing.get(abs)
  if (removal === undefined) {
    removal = (async () => {
      try {
        // Retries: a writer may still create a file inside a directory being removed (ENOTEMPTY).
        await fsp.rm(abs, { recursive: true, maxRetries: 3 })
        if (interrupting) removedWhileInterrupted.add(abs)
      } catch (e) {
        // Still tracked if it could not be removed: the interruption sweep tries again.
        if (!isErrno(e, 'ENOENT')) throw e
      } finally {
        removing.delete(abs)
      }
      tracked.delete(abs)
    })()
    removing.set(abs, removal)
  }
  return removal
}

/**
 * A private temp directory `<parent>/<prefix><pid>-XXXXXX`, tracked. The pid in the name lets a
 * later run remove it if this process dies without cleaning up (sweepAbandoned).
 */
export async function makeTempDir(parent: string, prefix: string): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(parent, `${prefix}${process.pid}-`))
  trackTemp(dir)
  return dir
}

/** The pid in a makeTempDir name with this prefix, or undefined if the name is not one. */
export function tempDirPid(name: string, prefix: string): number | undefined {
  if (!name.startsWith(prefix)) return undefined
  const m = /^(\d+)-[A-Za-z0-9]{6}$/.exec(name.slice(prefix.length))
  return m ? Number(m[1]) : undefined
}

/** Is a process with this pid alive (on this machine)? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return isErrno(e, 'EPERM')
  }
}

/** A live writer's temp file untouched this long is taken to belong to a reused pid. */
export const TEMP_MAX_IDLE_MS = 24 * 60 * 60 * 1000
/** A temp-looking name without our pid pattern is someone else's; it is left this long. */
const FOREIGN_TEMP_IDLE_MS = 60 * 60 * 1000

/**
 * The one rule for removing another process's temp file or directory (gc and sweepAbandoned):
 * its writer (`pid`, from the name) is dead, or it has not been written to for a day (the pid
 * was reused); a name without a pid waits an hour. `minIdleMs` adds a minimum age on top.
 */
export function isAbandonedTemp(pid: number | undefined, idleMs: number, minIdleMs = 0): boolean {
  if (idleMs < minIdleMs) return false
  if (pid === undefined) return idleMs >= FOREIGN_TEMP_IDLE_MS
  return !processAlive(pid) || idleMs >= TEMP_MAX_IDLE_MS
}

/** Dead writers' leftovers younger than this are left alone (a pid from another pid namespace sharing the directory looks dead here). */
export const ABANDONED_MIN_IDLE_MS = 10 * 60 * 1000

/**
 * Remove the entries of `dir` that `pidOf` recognises as temp names and whose writer is gone
 * (isAbandonedTemp, with at least `minIdleMs` since the last write). Best effort: a directory
 * that cannot be read, or an entry that vanishes meanwhile, is passed over. Returns how many
 * were removed.
 */
export async function sweepAbandoned(dir: string, pidOf: (name: string) => number | undefined, minIdleMs = ABANDONED_MIN_IDLE_MS): Promise<number> {
  let names: string[]
  try {
    names = await fsp.readdir(dir)
  } catch {
    return 0
  }
  let removed = 0
  const now = Date.now()
  for (const name of names) {
    const pid = pidOf(name)
    if (pid === undefined || pid === process.pid) continue
    const p = path.join(dir, name)
    try {
      const st = await fsp.lstat(p)
      if (!isAbandonedTemp(pid, now - st.mtimeMs, minIdleMs)) continue
      await fsp.rm(p, { recursive: true })
      removed++
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) continue
    }
  }
  return removed
}

/**
 * Register what stops a running operation when the process is interrupted. The hook may
 * return a few words on what it removed, for the interruption message. Returns the disposer.
 */
export function onInterrupt(hook: Hook): () => void {
  hooks.add(hook)
  return () => {
    hooks.delete(hook)
  }
}

let claim: ((sig: NodeJS.Signals) => void) | undefined

/**
 * A command that handles SIGINT/SIGTERM itself (`lading run` forwards them to its container and
 * exits with the container's status; `lading serve` drains its requests) claims them: while the
 * claim stands, the CLI's handler hands each signal to `handler` instead of interrupting.
 * Returns the release. One claim at a time: the later one replaces the earlier.
 */
export function claimSignals(handler: (sig: NodeJS.Signals) => void): () => void {
  claim = handler
  return () => {
    if (claim === handler) claim = undefined
  }
}

/** The claimer of SIGINT/SIGTERM, if a command claimed them (see claimSignals). */
export function signalClaim(): ((sig: NodeJS.Signals) => void) | undefined {
  return claim
}

/** True once an interruption began: a command failing now fails because it was stopped. */
export function isInterrupting(): boolean {
  return interrupting
}

/**
 * Stop everything running (the hooks, at most `timeoutMs` in all), then remove every temp path
 * still tracked. Returns how many temp paths were removed and what the hooks reported.
 * The final sweep is synchronous: the caller exits right after it, with no await in between.
 */
export async function interruptAll(timeoutMs: number): Promise<{ removed: number; notes: string[] }> {
  interrupting = true
  const notes: string[] = []
  const running = [...hooks].map(async (h) => {
    const note = await h()
    if (typeof note === 'string' && note !== '') notes.push(note)
  })
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    Promise.allSettled(running),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs)
    }),
  ])
  clearTimeout(timer)
  sweepTrackedSync()
  return { removed: removedWhileInterrupted.size, notes }
}

/** Remove every tracked temp path now, synchronously (also for a second signal that will not wait). */
export function sweepTrackedSync(): number {
  for (const p of tracked) {
    try {
      fs.rmSync(p, { recursive: true, maxRetries: 3 })
      removedWhileInterrupted.add(p)
    } catch {
      // Absent already (renamed into place, or removed by its writer): nothing to do.
    }
  }
  tracked.clear()
  return removedWhileInterrupted.size
}
