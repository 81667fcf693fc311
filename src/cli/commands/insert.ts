import type { Command } from 'commander'
import { addHistoryOptions, historyFromOptions } from '../image-options.js'
import { openImageArg, parseImageArg, usage } from '../util.js'
import { mtimeClamp, parseLevel } from './repack.js'

type Opts = Record<string, unknown> & { image: string; opaque?: boolean; whiteout?: boolean; compress?: string; level?: string; mtime?: string; tag?: string }

export function register(program: Command): void {
  const cmd = program
    .command('insert')
    .description('add a host file or directory to an image as a new layer, or delete a path with --whiteout (like umoci insert)')
    .requiredOption('--image <dir[:tag]>', 'the image, DIR[:TAG] (tag defaults to latest; it is moved to the result)')
    .argument('<source-or-target>', 'SOURCE on the host (or TARGET with --whiteout)')
    .argument('[target]', 'TARGET: absolute path in the image')
    .option('--opaque', 'make TARGET opaque first: hide what lower layers have under it (SOURCE must be a directory)')
    .option('--whiteout', 'delete TARGET from the image (only TARGET is given)')
    .option('--tag <newtag>', "save the result under this tag instead of moving --image's tag")
    .option('--compress <gzip|zstd|none>', 'layer compression', 'gzip')
    .option('--level <n>', 'compression level')
    .option('--mtime <epoch|date>', 'clamp file mtimes in the layer (default: $SOURCE_DATE_EPOCH if set)')
  addHistoryOptions(cmd).action(async (first: string, second: string | undefined, opts: Opts) => {
    const { parseCompression } = await import('../../io/compression.js')
    const { insertIntoImage } = await import('../../bundle/insert.js')
    const { dir, tag } = parseImageArg(opts.image)
    let source: string | undefined
    let target: string
    if (opts.whiteout) {
      if (second !== undefined) throw usage('--whiteout takes only TARGET')
      target = first
    } else {
      if (second === undefined) throw usage('insert needs SOURCE and TARGET')
      source = first
      target = second
    }
    // Only the path in the image: the host SOURCE path is not the image's business and
    // would leak into every copy of it (umoci records just "umoci insert").
    const what = opts.whiteout ? `--whiteout ${target}` : `${opts.opaque ? '--opaque ' : ''}${target}`
    const history = historyFromOptions(opts, { createdBy: `lading insert ${what}`, emptyLayer: false })
    const o: import('../../bundle/insert.js').InsertOptions = {
      ...(await openImageArg(opts.image)),
      target,
      compression: parseCompression(opts.compress ?? 'gzip'),
      history: history ?? false,
    }
    if (source !== undefined) o.source = source
    if (opts.whiteout) o.whiteout = true
    if (opts.opaque) o.opaque = true
    if (opts.tag !== undefined) o.tag = opts.tag
    const level = parseLevel(opts.level)
    if (level !== undefined) o.level = level
    const clamp = mtimeClamp(opts.mtime)
    if (clamp) o.mtimeClamp = clamp
    const r = await insertIntoImage(o)
    if (r.historyMismatch) process.stderr.write('lading: warning: --no-history: the image has history, which now has no entry for the new layer\n')
    process.stdout.write(`${dir}:${opts.tag ?? tag} ${r.manifest.digest} (new layer ${r.layer.digest})\n`)
  })
}
