import type { Command } from 'commander'
import { parseImageArg, usage } from '../util.js'

export function register(program: Command): void {
  program
    .command('new')
    .description('create a new empty image for a platform and tag it, like umoci new (with one empty layer: see README)')
    .requiredOption('--image <dir:tag>', 'layout and tag of the new image, DIR:TAG')
    .option('--platform <os/arch[/variant]>', "the image's platform (default: this machine's)")
    .action(async (opts: { image: string; platform?: string }) => {
      const { dir, tag } = parseImageArg(opts.image, null)
      if (!tag) throw usage('--image needs a tag for the new image: DIR:TAG')
      const { Layout } = await import('../../store/layout.js')
      const { newImage } = await import('../../store/new-image.js')
      const { hostPlatform, parsePlatform } = await import('../../spec/platform.js')
      const layout = await Layout.open(dir)
      const desc = await newImage(layout, tag, opts.platform ? parsePlatform(opts.platform) : hostPlatform())
      process.stdout.write(`${dir}:${tag} ${desc.digest}\n`)
    })
}
