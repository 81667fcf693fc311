/**
 * `lading ls --layout DIR [--json]`: the tags of a layout, one per line, in index.json order
 * (like `umoci ls`). Must start fast: it loads only the layout module.
 */
import type { Command } from 'commander'
import { printJson, usage, writeOut } from '../util.js'

export function register(program: Command): void {
  program
    .command('ls')
    .alias('list')
    .description('list the tags of an OCI image layout')
    .requiredOption('--layout <dir>', 'the layout directory')
    .option('--json', 'print JSON: [{tag, mediaType, digest, size}]')
    .action(async (opts: { layout: string; json?: boolean }) => {
      if (!opts.layout) throw usage('--layout must not be empty')
      const { Layout } = await import('../../store/layout.js')
      const tags = await (await Layout.open(opts.layout)).listTags()
      if (opts.json) {
        printJson(
          tags.map(({ tag, descriptor: d }) => ({
            tag,
            mediaType: d.mediaType,
            digest: d.digest,
            size: d.size,
            ...(d.platform ? { platform: d.platform } : {}),
          })),
        )
        return
      }
      await writeOut(tags.map((t) => `${t.tag}\n`).join(''))
    })
}
