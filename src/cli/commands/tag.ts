/**
 * `lading tag --image DIR[:TAG] NEWTAG` (umoci's spelling): point NEWTAG at the descriptor the
 * source names. Only index.json changes; the entry is copied (media type, size, platform).
 */
import type { Command } from 'commander'
import { parseImageArg } from '../util.js'

export function register(program: Command): void {
  program
    .command('tag')
    .description('add a tag naming the same manifest (or index) as an existing tag or digest')
    .requiredOption('--image <dir[:tag]>', 'the source image, DIR[:TAG] or DIR@DIGEST')
    .argument('<new-tag>', 'the tag to create or move')
    .action(async (newTag: string, opts: { image: string }) => {
      const { dir, tag, digest } = parseImageArg(opts.image)
      const { Layout } = await import('../../store/layout.js')
      const { assertValidTag } = await import('../../spec/ref-name.js')
      assertValidTag(newTag)
      const layout = await Layout.open(dir)
      let desc
      if (digest !== undefined) {
        const { parseDigest } = await import('../../digest/digest.js')
        const { descriptorForDigest } = await import('../../store/resolve.js')
        desc = await descriptorForDigest(layout, parseDigest(digest))
      } else {
        desc = await layout.resolveTag(tag!)
      }
      await layout.setTag(newTag, desc)
      // As new, config and insert do: what the tag now names.
      process.stdout.write(`${dir}:${newTag} ${desc.digest}\n`)
    })
}
