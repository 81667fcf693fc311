/**
 * Copy progress on stderr (never stdout, which may carry an archive):
 * - 'tty': a line per blob with bytes, rate and state, redrawn in place with ANSI escapes
 *   (like `docker pull`);
 * - 'plain': a short line per blob event, for pipes and CI logs;
 * - 'json': one JSON event per line (the CopyEvent objects, plus a final `done`);
 * - 'quiet': nothing (errors are printed by the CLI's error handler).
 */
import type { BlobAction, CopyEvent } from '../copy/events.js'
import { shortDigest } from '../digest/digest.js'
import { quoteName } from '../errors.js'
import { formatBytes, usage } from './util.js'

export type ProgressMode = 'tty' | 'plain' | 'json' | 'quiet'

/** The state shown while a blob moves, by what happens to its bytes. */
const ACTING: Record<BlobAction, string> = {
  copy: 'copying',
  compress: 'compressing',
  decompress: 'decompressing',
  recompress: 'recompressing',
  unpack: 'unpacking',
  verify: 'verifying',
  write: 'writing',
}
/** Plain lines: [start, done] verbs; a copy that changes the bytes says how after the size. */
const VERBS: Record<BlobAction, [string, string]> = {
  copy: ['Copying', 'Copied'],
  compress: ['Copying', 'Copied'],
  decompress: ['Copying', 'Copied'],
  recompress: ['Copying', 'Copied'],
  unpack: ['Unpacking', 'Unpacked'],
  verify: ['Verifying', 'Verified'],
  write: ['Writing', 'Wrote'],
}
const MOVING = new Set(Object.values(ACTING))

interface Row {
  digest: string
  size: number
  bytes: number
  state: string
  action?: BlobAction
  started: number
  ended?: number
  stored?: string
}

/**
 * The mode for these options: --quiet, an explicit --progress, else 'tty' on a terminal and
 * `notTty` elsewhere ('plain' for copy, whose log lines are its output; 'quiet' for unpack,
 * repack and validate, which stay silent in pipes).
 */
export function chooseProgressMode(
  opts: { quiet?: boolean; progress?: string },
  stream: NodeJS.WriteStream = process.stderr,
  notTty: ProgressMode = 'plain',
): ProgressMode {
  if (opts.quiet) return 'quiet'
  if (opts.progress === 'json') return 'json'
  if (opts.progress === 'plain') return 'plain'
  if (opts.progress === 'tty') return 'tty'
  if (opts.progress === 'none') return 'quiet'
  return stream.isTTY && process.env.CI !== 'true' && process.env.TERM !== 'dumb' ? 'tty' : notTty
}

/**
 * `--progress` for commands whose long work is on blobs (unpack, repack, validate): checked, and
 * the printer to pass events to, or undefined when nothing is to be shown (no cost then).
 */
export function progressFor(opts: { progress?: string }): ProgressPrinter | undefined {
  if (opts.progress !== undefined && !['json', 'plain', 'tty', 'none'].includes(opts.progress))
    throw usage(`--progress: expected tty, plain, json or none, got ${quoteName(opts.progress)}`)
  const mode = chooseProgressMode(opts, process.stderr, 'quiet')
  return mode === 'quiet' ? undefined : new ProgressPrinter(mode)
}

export const PROGRESS_HELP = 'progress on stderr: tty, plain, json or none (default: tty on a terminal, else none)'

export class ProgressPrinter {
  readonly #mode: ProgressMode
  readonly #out: NodeJS.WritableStream
  readonly #rows = new Map<string, Row>()
  #drawn = 0
  #dirty = false
  #lastDraw = 0
  #timer: NodeJS.Timeout | undefined

  constructor(mode: ProgressMode, out: NodeJS.WritableStream = process.stderr) {
    this.#mode = mode
    this.#out = out
  }

  /** The callback to hand to copyImage. */
  readonly onEvent = (e: CopyEvent): void => {
    switch (this.#mode) {
      case 'quiet':
        return
      case 'json':
        this.#out.write(JSON.stringify({ ...e, time: new Date().toISOString() }) + '\n')
        return
      case 'plain':
        this.#plain(e)
        return
      case 'tty':
        this.#tty(e)
        return
    }
  }

  #plain(e: CopyEvent): void {
    const line = (s: string): void => {
      this.#out.write(s + '\n')
    }
    switch (e.type) {
      case 'blob-start': {
        this.#rows.set(e.digest, { digest: e.digest, size: e.size, bytes: 0, state: ACTING[e.action], action: e.action, started: Date.now() })
        const how = ['compress', 'decompress', 'recompress'].includes(e.action) ? `, ${ACTING[e.action]}` : ''
        line(`${VERBS[e.action][0]} ${e.action === 'write' ? e.digest : `blob ${shortDigest(e.digest)} (${formatBytes(e.size)}${how})`}`)
        return
      }
      case 'blob-exists':
        line(`Blob ${shortDigest(e.digest)} exists, skipped`)
        return
      case 'blob-skipped':
        line(`Blob ${shortDigest(e.digest)} skipped: ${e.reason}`)
        return
      case 'blob-done': {
        const r = this.#rows.get(e.digest)
        const secs = r ? (Date.now() - r.started) / 1000 : 0
        const as = e.stored.digest !== e.digest ? ` as ${shortDigest(e.stored.digest)} (${formatBytes(e.stored.size)})` : ''
        line(`${VERBS[r?.action ?? 'copy'][1]} ${r?.action === 'write' ? e.digest : `blob ${shortDigest(e.digest)}`}${as} in ${secs.toFixed(1)}s`)
        return
      }
      case 'manifest':
        line(`Wrote manifest ${shortDigest(e.digest)}${e.tag !== undefined ? ` as ${e.tag}` : ''}`)
        return
      case 'warning':
        line(`Warning: ${e.message}`)
        return
      case 'blob-progress':
        return
    }
  }

  #tty(e: CopyEvent): void {
    switch (e.type) {
      case 'blob-start':
        this.#rows.set(e.digest, { digest: e.digest, size: e.size, bytes: 0, state: ACTING[e.action], started: Date.now() })
        break
      case 'blob-progress': {
        const r = this.#rows.get(e.digest)
        if (r) r.bytes = e.bytes
        break
      }
      case 'blob-exists':
        this.#rows.set(e.digest, { digest: e.digest, size: e.size, bytes: e.size, state: 'exists', started: Date.now() })
        break
      case 'blob-skipped':
        this.#rows.set(e.digest, { digest: e.digest, size: e.size, bytes: e.size, state: 'skipped', started: Date.now() })
        break
      case 'blob-done': {
        const r = this.#rows.get(e.digest)
        if (r) {
          r.bytes = e.size
          r.state = 'done'
          r.ended = Date.now()
          if (e.stored.digest !== e.digest) r.stored = shortDigest(e.stored.digest)
        }
        break
      }
      case 'manifest':
        this.#below(`Wrote manifest ${shortDigest(e.digest)}${e.tag !== undefined ? ` as ${e.tag}` : ''}`)
        return
      case 'warning':
        this.#below(`Warning: ${e.message}`)
        return
    }
    this.#dirty = true
    this.#draw(e.type !== 'blob-progress')
  }

  #line(r: Row): string {
    const secs = Math.max(((r.ended ?? Date.now()) - r.started) / 1000, 0.001)
    const pct = r.size > 0 ? Math.min(1, r.bytes / r.size) : 1
    const width = 24
    const filled = Math.round(pct * width)
    const bar = MOVING.has(r.state) && r.size > 0 ? `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}] ` : ''
    const rate = MOVING.has(r.state) || r.state === 'done' ? ` ${formatBytes(Math.round(r.bytes / secs))}/s` : ''
    return `${shortDigest(r.digest)}: ${r.state.padEnd(13)} ${bar}${formatBytes(r.bytes)}${r.size > 0 || r.bytes === 0 ? ` / ${formatBytes(r.size)}` : ''}${rate}${r.stored ? ` -> ${r.stored}` : ''}`
  }

  /** Final state of the rows, then a line under them; later rows start a new block. */
  #below(line: string): void {
    if (this.#dirty) this.#draw(true)
    this.#out.write(line + '\n')
    this.#drawn = 0
    this.#rows.clear()
    this.#dirty = false
  }

  /** Redraw every row in place; progress-only updates are throttled to 10 per second. */
  #draw(force: boolean): void {
    const now = Date.now()
    if (!force && now - this.#lastDraw < 100) {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined
        this.#draw(true)
      }, 100)
      this.#timer.unref?.()
      return
    }
    this.#lastDraw = now
    this.#dirty = false
    let s = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : ''
    const rows = [...this.#rows.values()]
    for (const r of rows) s += `\x1b[2K\r${this.#line(r)}\n`
    this.#drawn = rows.length
    this.#out.write(s)
  }

  /** Final state of every row; call once the copy ended (or failed). */
  finish(summary?: string): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#mode === 'tty' && this.#dirty) this.#draw(true)
    if (summary !== undefined && this.#mode !== 'quiet' && this.#mode !== 'json') this.#out.write(summary + '\n')
  }
}
