import type { Command } from 'commander'
import { LadingError } from '../../errors.js'
import type { Descriptor, ImageConfig, Manifest, Platform } from '../../spec/types.js'
import { parseImageArg, printJson, usage } from '../util.js'

interface Opts {
  image?: string
  raw?: boolean
  config?: boolean
  platform?: string
  tlsVerify?: string | boolean
  certDir?: string
  creds?: string
  authfile?: string
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('summarise an image from a layout (--image DIR[:TAG]) or any transport (oci:, oci-archive:, docker-archive:, dir:, docker://) without pulling layers')
    .argument('[reference]', 'a transport reference such as docker://REGISTRY/REPO:TAG')
    .option('--image <dir[:tag]>', 'an image in an OCI layout, DIR[:TAG] or DIR@DIGEST')
    .option('--raw', 'print the manifest (or index) exactly as stored')
    .option('--config', "print the image's config exactly as stored")
    .option('--platform <os/arch[/variant]>', 'the image to pick from an index (default: this machine)')
    .option('--tls-verify [bool]', 'registries: verify TLS; false also allows plain HTTP (default true)')
    .option('--cert-dir <dir>', 'CA certificates and client keys for registries')
    .option('--creds <user:pass>', 'registry credentials')
    .option('--authfile <file>', 'registry credentials file (default: auth.json / ~/.docker/config.json)')
    .action(async (reference: string | undefined, opts: Opts) => {
      if (!!reference === !!opts.image) throw usage('give either --image DIR[:TAG] or a transport reference, not both')
      const { parsePlatform, hostPlatform, platformMatches, formatPlatform } = await import('../../spec/platform.js')
      const { parseManifest, parseIndex, parseConfig, manifestMediaType } = await import('../../spec/parse.js')
      const { isIndexMediaType } = await import('../../spec/media-types.js')
      const { summarizeImage } = await import('../../spec/image-stat.js')
      const { checkIndexDepth } = await import('../../io/limits.js')
      const want: Platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform()

      // Both forms reduce to: get a manifest by digest (or the top one), get a small blob.
      let getManifest: (digest?: Descriptor['digest']) => Promise<{ bytes: Buffer; mediaType: string; digest: Descriptor['digest'] }>
      let getSmallBlob: (d: Descriptor) => Promise<Buffer>
      let close = async () => {}
      let name: string
      if (opts.image) {
        const { dir, tag, digest } = parseImageArg(opts.image)
        const { Layout } = await import('../../store/layout.js')
        const { parseDigest } = await import('../../digest/digest.js')
        const layout = await Layout.open(dir)
        const top = digest ? { digest: parseDigest(digest) } : await layout.resolveTag(tag!)
        name = `${dir}:${tag ?? digest}`
        getManifest = async (d) => layout.getManifest(d ? { digest: d } : top)
        getSmallBlob = (d) => layout.readBlob(d)
      } else {
        const [{ parseReference, formatReference }, { openSource }] = await Promise.all([import('../../transport/reference.js'), import('../../transport/open.js')])
        const { readAllLimited, DEFAULT_MAX_DOCUMENT_BYTES } = await import('../../io/limits.js')
        const ref = parseReference(reference!)
        name = formatReference(ref)
        const { registryOptionsFromFlags } = await import('../../transport/registry/cli-options.js')
        const src = await openSource(ref, registryOptionsFromFlags({ tlsVerify: opts.tlsVerify, certDir: opts.certDir, creds: opts.creds, authfile: opts.authfile }))
        close = () => src.close()
        getManifest = (d) => src.getManifest(d)
        getSmallBlob = async (d) => readAllLimited(await src.getBlob(d), DEFAULT_MAX_DOCUMENT_BYTES, `blob ${d.digest}`)
      }
      try {
        let raw = await getManifest()
        if (opts.raw) { process.stdout.write(raw.bytes); return }
        let indexInfo: { Digest: string; Platforms: string[] } | undefined
        let mediaType = raw.mediaType || manifestMediaType(raw.bytes, name)
        // Descend through (possibly nested) indexes to the image for the wanted platform.
        let depth = 0
        for (; isIndexMediaType(mediaType); depth++) {
          checkIndexDepth(depth, name)
          const index = parseIndex(raw.bytes, `${name} (index ${raw.digest})`, mediaType)
          const platforms = index.manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform!))
          indexInfo ??= { Digest: raw.digest, Platforms: platforms }
          const pick = index.manifests.find((m) => platformMatches(want, m.platform)) ??
            (index.manifests.length === 1 ? index.manifests[0] : undefined)
          if (!pick) throw new LadingError('PLATFORM_NOT_FOUND', `${name}: no image for ${formatPlatform(want)} (available: ${platforms.join(', ') || 'none'}); use --platform`)
          raw = await getManifest(pick.digest)
          mediaType = raw.mediaType || manifestMediaType(raw.bytes, name)
        }
        checkIndexDepth(depth, name)
        const manifest: Manifest = parseManifest(raw.bytes, `${name} (manifest ${raw.digest})`, mediaType)
        const configBytes = await getSmallBlob(manifest.config)
        if (opts.config) { process.stdout.write(configBytes); return }
        const config: ImageConfig = parseConfig(configBytes, `${name} (config ${manifest.config.digest})`)
        const summary = summarizeImage({ mediaType, digest: raw.digest, size: raw.bytes.length }, manifest, config, name)
        if (indexInfo) summary.Index = indexInfo
        printJson(summary)
      } finally {
        await close()
      }
    })
}
