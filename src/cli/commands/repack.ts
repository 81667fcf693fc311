import type { Command } from 'commander'
import { addHistoryOptions, historyFromOptions } from '../image-options.js'
import { PROGRESS_HELP, progressFor } from '../progress.js'
import { collect, parseImageArg, usage } from '../util.js'

type Opts = Record<string, unknown> & {
  progress?: string
  image: string
  compress?: string
  level?: string
  maskPath?: string[]
  refreshBundle?: boolean
  mtime?: string
}

/** SOURCE_DATE_EPOCH (reproducible-builds.org) or --mtime, as the clamp for layer mtimes. */
export function mtimeClamp(mtime: string | undefined): Date | undefined {
  const s = mtime ?? process.env.SOURCE_DATE_EPOCH
  if (s === undefined || s === '') return undefined
  if (/^\d{1,12}$/.test(s)) return new Date(Number(s) * 1000)
  const t = Date.parse(s)
  if (Number.isNaN(t)) throw usage(`--mtime / SOURCE_DATE_EPOCH ${JSON.stringify(s)}: expected seconds since the epoch or an RFC 3339 date`)
  return new Date(t)
}

export function parseLevel(s: string | undefined): number | undefined {
  if (s === undefined) return undefined
  if (!/^-?\d{1,2}$/.test(s)) throw usage(`--level ${JSON.stringify(s)}: expected an integer`)
  return Number(s)
}

export function register(program: Command): void {
  const cmd = program
    .command('repack')
    .description("add the changes made in a bundle's rootfs as a new layer and move the tag (like umoci repack)")
    .requiredOption('--image <dir[:tag]>', 'the layout the bundle was unpacked from, and the tag to set (default latest)')
    .argument('<bundle>', 'bundle made by lading unpack')
    .option('--compress <gzip|zstd|none>', 'layer compression', 'gzip')
    .option('--level <n>', 'compression level')
    .option('--mask-path <path>', 'leave this path (and what is below it) out of the layer (repeatable)', collect)
    .option('--mtime <epoch|date>', 'clamp file mtimes in the layer (default: $SOURCE_DATE_EPOCH if set)')
    .option('--refresh-bundle', "make the new image the bundle's base, so a later repack only adds later changes")
    .option('--progress <mode>', PROGRESS_HELP)
  addHistoryOptions(cmd).action(async (bundle: string, opts: Opts) => {
    const { parseCompression } = await import('../../io/compression.js')
    const { repackBundle } = await import('../../bundle/repack.js')
    const { dir, tag } = parseImageArg(opts.image)
    if (tag === undefined) throw usage('--image needs a tag to move (DIR[:TAG])')
    const { Layout } = await import('../../store/layout.js')
    const history = historyFromOptions(opts, { createdBy: 'lading repack', emptyLayer: false })
    const o: import('../../bundle/repack.js').RepackOptions = {
      layout: await Layout.open(dir),
      tag,
      compression: parseCompression(opts.compress ?? 'gzip'),
      history: history ?? false,
    }
    const level = parseLevel(opts.level)
    if (level !== undefined) o.level = level
    if (opts.maskPath?.length) o.maskPaths = opts.maskPath
    const clamp = mtimeClamp(opts.mtime)
    if (clamp) o.mtimeClamp = clamp
    if (opts.refreshBundle) o.refreshBundle = true
    const printer = progressFor(opts)
    if (printer) o.onProgress = printer.onEvent
    const r = await repackBundle(bundle, o).finally(() => printer?.finish())
    if (r.tagMoved) {
      const { shortDigest } = await import('../../digest/digest.js')
      const t = r.tagMoved
      process.stderr.write(
        `lading: warning: ${t.tag} moved since unpack (to ${shortDigest(t.was)}); ${r.manifest ? `the new image is based on ${shortDigest(t.base)}, as unpacked, and replaces it` : 'no change, the tag is left alone'}\n`,
      )
    }
    if (!r.manifest) {
      process.stdout.write(`no changes in ${bundle}: no new layer, ${dir}:${tag} unchanged\n`)
      return
    }
    if (r.historyMismatch) process.stderr.write('lading: warning: --no-history: the image has history, which now has no entry for the new layer\n')
    process.stdout.write(`${dir}:${tag} ${r.manifest.digest} (new layer ${r.layer?.digest}, ${r.changes.length} change${r.changes.length === 1 ? '' : 's'})\n`)
  })
}
