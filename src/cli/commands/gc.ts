/**
 * `lading gc --layout DIR`: remove blobs nothing in index.json reaches (through indexes,
 * manifests, subjects and referrers) and temp files of dead writers; prints what it removed.
 */
import type { Command } from 'commander'
import { formatBytes, parseDuration, usage, writeOut } from '../util.js'

export function register(program: Command): void {
  program
    .command('gc')
    .description('garbage-collect unreferenced blobs and stale temp files of an OCI image layout')
    .requiredOption('--layout <dir>', 'the layout directory')
    .option('--keep-recent <duration>', 'keep unreferenced blobs younger than this (e.g. 10m), for writers that have not tagged yet', parseDuration)
    .action(async (opts: { layout: string; keepRecent?: number }) => {
      if (!opts.layout) throw usage('--layout must not be empty')
      const { Layout } = await import('../../store/layout.js')
      const layout = await Layout.open(opts.layout)
      const r = await layout.gc({ minAgeMs: opts.keepRecent ?? 0 })
      let out = r.removed.map((b) => `removed ${b.digest} (${formatBytes(b.size)})\n`).join('')
      const total = r.removed.reduce((n, b) => n + b.size, 0)
      out += `removed ${r.removed.length} blob${r.removed.length === 1 ? '' : 's'} (${formatBytes(total)})`
      out += ` and ${r.tempFilesRemoved} temp file${r.tempFilesRemoved === 1 ? '' : 's'} (${formatBytes(r.tempBytesRemoved)})\n`
      await writeOut(out)
    })
}
