import type { Command } from 'commander'
import { parseImageArg, usage } from '../util.js'

export function register(program: Command): void {
  program
    .command('new')
    .description('create a new empty image (no layers) for a platform and tag it, like umoci new')
    .requiredOption('--image <dir:tag>', 'layout and tag of the new image, DIR:TAG')
    .option('--platform <os/arch[/variant]>', "the image's platform (default: this machine's)")
    .action(async (opts: { image: string; platform?: string }) => {
      const { dir, tag } = parseImageArg(opts.image, null)
      if (!tag) throw usage('--image needs a tag for the new image: DIR:TAG')
      const { Layout } = await import('../../store/layout.js')
      const { writeImage } = await import('../../store/image.js')
      const { hostPlatform, parsePlatform } = await import('../../spec/platform.js')
      const { newImageConfig } = await import('../../spec/config-edit.js')
      const { MediaType } = await import('../../spec/media-types.js')
      const layout = await Layout.open(dir)
      const config = newImageConfig(opts.platform ? parsePlatform(opts.platform) : hostPlatform())
      const manifest = {
        schemaVersion: 2 as const,
        mediaType: MediaType.OciManifest,
        // writeImage fills in the config descriptor from the config it stores.
        config: { mediaType: MediaType.OciConfig, digest: '' as never, size: 0 },
        layers: [],
      }
      const desc = await writeImage(layout, { config, manifest, tag })
      process.stdout.write(`${dir}:${tag} ${desc.digest}\n`)
    })
}
