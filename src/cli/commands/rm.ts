/** `lading rm --image DIR[:TAG]`: remove a tag from index.json; its blobs stay until `lading gc`. */
import type { Command } from 'commander'
import { parseImageArg, usage } from '../util.js'

export function register(program: Command): void {
  program
    .command('rm')
    .alias('remove')
    .description('remove a tag from an OCI image layout (run gc to free its blobs)')
    .requiredOption('--image <dir[:tag]>', 'the tag to remove, DIR[:TAG] (TAG defaults to latest)')
    .action(async (opts: { image: string }) => {
      const { dir, tag, digest } = parseImageArg(opts.image)
      if (digest !== undefined) throw usage(`rm removes a tag; ${JSON.stringify(opts.image)} names a digest`)
      const { Layout } = await import('../../store/layout.js')
      await (await Layout.open(dir)).removeTag(tag!)
    })
}
