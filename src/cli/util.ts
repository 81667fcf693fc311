/**
 * Shared CLI plumbing. Only src/cli reads argv or writes to stdout/stderr.
 * Command modules must stay light to import: heavy modules (the registry client, zstd-napi, the tar
 * reader) are loaded with `await import()` inside actions, so `lading ls` starts fast.
 */
import { LadingError } from '../errors.js'
import { parseLayoutImage } from '../store/image-name.js'

export function usage(message: string): LadingError {
  return new LadingError('USAGE', message)
}

/**
 * Parse umoci's image argument `DIR[:TAG]` (or `DIR@DIGEST`) with the rule of `oci:` references
 * (parseLayoutImage): the directory ends at the FIRST colon, as umoci splits --image, so
 * `./images:a/b:c` is tag `a/b:c` of ./images. `defaultTag` null means no default: the caller
 * requires an explicit tag or none.
 */
export function parseImageArg(arg: string, defaultTag: string | null = 'latest'): { dir: string; tag?: string; digest?: string } {
  if (!arg) throw usage('--image is required (DIR[:TAG])')
  const r = parseLayoutImage(arg, true, (why) =>
    usage(`--image ${JSON.stringify(arg)}: ${why} (expected DIR[:TAG] or DIR@DIGEST; a DIR containing ':' cannot be named, as with umoci)`),
  )
  if (r.digest !== undefined) return { dir: r.path, digest: r.digest }
  const tag = r.tag ?? defaultTag
  return tag === null ? { dir: r.path } : { dir: r.path, tag }
}

/**
 * `--image DIR[:TAG]` / `DIR@DIGEST` as the library takes an image: the layout opened, and a
 * selector (a tag or a digest). The layout module is loaded here, not at import (see above).
 */
export async function openImageArg(arg: string): Promise<{ layout: import('../store/layout.js').Layout; image: import('../store/resolve.js').ImageSelector }> {
  const r = parseImageArg(arg)
  const [{ Layout }, { parseDigest }] = await Promise.all([import('../store/layout.js'), import('../digest/digest.js')])
  const layout = await Layout.open(r.dir)
  return { layout, image: r.digest !== undefined ? { digest: parseDigest(r.digest) } : { tag: r.tag ?? 'latest' } }
}

/** A duration like 30s, 10m, 1h, 500ms (seconds without a unit), in milliseconds; USAGE otherwise. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s)
  if (!m) throw usage(`invalid duration ${JSON.stringify(s)} (e.g. 30s, 10m, 1h)`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']
  return Number(m[1]) * unit
}

/** Collect a repeatable option into an array (commander's custom-parser form). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

/** Write to stdout, honouring back-pressure and a closed pipe (e.g. `| head`). */
export async function writeOut(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve))
}

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let v = n
  let i = 0
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000
    i++
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`
}

/**
 * Run `fn` with an AbortSignal fired by SIGINT/SIGTERM (src/cli/run.ts, through the interrupt
 * hooks of src/io/cleanup.ts): the operation removes what it made and rejects; the run's
 * handler waits for that, reports, and exits 130/143 as a shell does for an interrupted command.
 */
export async function whileInterruptible<T>(fn: (signal: AbortSignal) => Promise<T>, what: string): Promise<T> {
  const { onInterrupt } = await import('../io/cleanup.js')
  const ac = new AbortController()
  let running: Promise<T> | undefined
  const dispose = onInterrupt(async () => {
    ac.abort()
    await running?.catch(() => {})
    return `${what}: removed what was written`
  })
  try {
    running = fn(ac.signal)
    return await running
  } finally {
    dispose()
  }
}
