/**
 * `lading validate`: check a whole layout, one image in it, or one document on its own.
 * Exit 0 valid, 1 invalid (every problem printed, one line each), 2 usage.
 */
import type { Command } from 'commander'
import { PROGRESS_HELP, progressFor } from '../progress.js'
import { formatBytes, parseImageArg, printJson, usage, writeOut } from '../util.js'

interface ValidateOpts {
  progress?: string
  layout?: string
  image?: string
  type?: string
  platform?: string
  json?: boolean
  deep?: boolean
}

const TYPES = ['manifest', 'index', 'config', 'layout'] as const

export function register(program: Command): void {
  program
    .command('validate')
    .description('check blobs (size, digest), documents (structure, semantics) and references of a layout, an image, or one document')
    .argument('[file]', 'with --type: the document to check')
    .option('--progress <mode>', PROGRESS_HELP)
    .option('--layout <dir>', 'validate everything reachable from index.json')
    .option('--image <dir[:tag]>', 'validate one image, DIR[:TAG] or DIR@DIGEST')
    .option('--platform <os/arch[/variant]>', 'with --image: check only the manifests for this platform')
    .option('--type <type>', `validate FILE alone as a ${TYPES.join('|')}`)
    .option('--deep', 'also decompress every layer and check it against its diff_id (slower)')
    .option('--json', 'print {valid, problems, checked} as JSON')
    .action(async (file: string | undefined, opts: ValidateOpts) => {
      const modes = [opts.layout, opts.image, opts.type].filter((x) => x !== undefined).length
      if (modes !== 1) throw usage('validate needs exactly one of --layout DIR, --image DIR[:TAG] or --type TYPE FILE')
      if (opts.type === undefined && file !== undefined) throw usage(`unexpected argument ${JSON.stringify(file)} (a FILE goes with --type)`)
      if (opts.platform !== undefined && opts.image === undefined) throw usage('--platform goes with --image')
      if (opts.deep && opts.type !== undefined) throw usage('--deep goes with --layout or --image')
      const { formatProblem } = await import('../../spec/validate.js')
      let problems
      let checked: { blobs: number; bytes: number } | undefined
      let what: string
      if (opts.type !== undefined) {
        const type = opts.type
        if (!(TYPES as readonly string[]).includes(type)) throw usage(`--type must be one of ${TYPES.join(', ')}, got ${JSON.stringify(type)}`)
        if (file === undefined) throw usage('--type needs a FILE to check')
        const { validateDocument } = await import('../../store/validate-layout.js')
        problems = await validateDocument(file, type as (typeof TYPES)[number])
        what = `${file} (${type})`
        const { promises: fsp } = await import('node:fs')
        const size = await fsp.lstat(file).then(
          (st) => st.size,
          () => 0,
        )
        checked = { blobs: 0, bytes: size }
      } else {
        const { validateLayout } = await import('../../store/validate-layout.js')
        const printer = progressFor(opts)
        const progress = printer ? { onProgress: printer.onEvent } : {}
        if (opts.layout !== undefined) {
          if (opts.layout === '') throw usage('--layout needs a directory')
          ;({ problems, checked } = await validateLayout(opts.layout, { deep: opts.deep === true, ...progress }).finally(() => printer?.finish()))
          what = opts.layout
        } else {
          const { dir, tag, digest } = parseImageArg(opts.image!)
          const sel: { tag?: string; digest?: string; platform?: import('../../spec/types.js').Platform; deep: boolean } = { deep: opts.deep === true }
          if (digest !== undefined) sel.digest = digest
          else if (tag !== undefined) sel.tag = tag
          if (opts.platform !== undefined) sel.platform = (await import('../../spec/platform.js')).parsePlatform(opts.platform)
          ;({ problems, checked } = await validateLayout(dir, { ...sel, ...progress }).finally(() => printer?.finish()))
          what = opts.image!
        }
      }
      const valid = problems.length === 0
      if (!valid) process.exitCode = 1
      if (opts.json) {
        printJson({ valid, problems, checked })
        return
      }
      const stats = opts.type === undefined && checked ? ` (${checked.blobs} blobs, ${formatBytes(checked.bytes)} checked)` : ''
      if (valid) {
        await writeOut(`${what}: valid${stats}\n`)
        return
      }
      await writeOut(problems.map((p) => formatProblem(p) + '\n').join(''))
      await writeOut(`${what}: invalid: ${problems.length} problem${problems.length === 1 ? '' : 's'}${stats}\n`)
    })
}
