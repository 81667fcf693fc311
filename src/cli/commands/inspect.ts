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
  tags?: boolean
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description(
      'summarise an image from a layout (--image DIR[:TAG]) or any transport (oci:, oci-archive:, docker-archive:, dir:, docker://) without pulling layers',
    )
    .argument('[reference]', 'a transport reference such as docker://REGISTRY/REPO:TAG')
    .option('--image <dir[:tag]>', 'an image in an OCI layout, DIR[:TAG] or DIR@DIGEST')
    .option('--raw', 'print the manifest (or index) exactly as stored')
    .option('--config', "print the image's config exactly as stored")
    .option('--platform <os/arch[/variant]>', 'the image to pick from an index (default: this machine)')
    .option('--tls-verify [bool]', 'registries: verify TLS; false also allows plain HTTP (default true)')
    .option('--cert-dir <dir>', 'CA certificates and client keys for registries')
    .option('--creds <user:pass>', 'registry credentials')
    .option('--authfile <file>', 'registry credentials file (default: auth.json / ~/.docker/config.json)')
    .option('-n, --no-tags', "docker://: do not list the repository's tags (RepoTags stays empty)")
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
      // skopeo's Name: for a registry image the repository without transport or tag.
      let shownName: string
      let repoTags: Promise<string[]> = Promise.resolve([])
      if (opts.image) {
        const { dir, tag, digest } = parseImageArg(opts.image)
        const { Layout } = await import('../../store/layout.js')
        const { parseDigest } = await import('../../digest/digest.js')
        const layout = await Layout.open(dir)
        const top = digest ? { digest: parseDigest(digest) } : await layout.resolveTag(tag!)
        name = `${dir}:${tag ?? digest}`
        shownName = name
        getManifest = async (d) => layout.getManifest(d ? { digest: d } : top)
        getSmallBlob = (d) => layout.readBlob(d)
      } else {
        const [{ parseReference, formatReference }, { openSource }] = await Promise.all([
          import('../../transport/reference.js'),
          import('../../transport/open.js'),
        ])
        const { readAllLimited, DEFAULT_MAX_DOCUMENT_BYTES } = await import('../../io/limits.js')
        const ref = parseReference(reference!)
        name = formatReference(ref)
        shownName = name
        const { registryOptionsFromFlags } = await import('../../transport/registry/cli-options.js')
        const registryOpts = registryOptionsFromFlags({ tlsVerify: opts.tlsVerify, certDir: opts.certDir, creds: opts.creds, authfile: opts.authfile })
        const src = await openSource(ref, registryOpts)
        close = () => src.close()
        if (ref.transport === 'docker') {
          shownName = `${ref.registry}/${ref.repository}`
          if (opts.tags !== false && !opts.raw && !opts.config) {
            const { listRepoTags } = await import('../../transport/registry/repo-tags.js')
            const listing = listRepoTags(ref, registryOpts, (msg) => process.stderr.write(`lading: warning: ${msg}\n`))
            listing.catch(() => {}) // awaited below; a failure of the manifest's fetch comes first
            repoTags = listing
          }
        }
        getManifest = (d) => src.getManifest(d)
        getSmallBlob = async (d) => readAllLimited(await src.getBlob(d), DEFAULT_MAX_DOCUMENT_BYTES, `blob ${d.digest}`)
      }
      try {
        let raw = await getManifest()
        if (opts.raw) {
          process.stdout.write(raw.bytes)
          return
        }
        let indexInfo: { digest: string; platforms: string[] } | undefined
        let mediaType = raw.mediaType || manifestMediaType(raw.bytes, name)
        // Descend through (possibly nested) indexes to the image for the wanted platform.
        let depth = 0
        for (; isIndexMediaType(mediaType); depth++) {
          checkIndexDepth(depth, name)
          const index = parseIndex(raw.bytes, `${name} (index ${raw.digest})`, mediaType)
          const platforms = index.manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform!))
          indexInfo ??= { digest: raw.digest, platforms }
          const pick = index.manifests.find((m) => platformMatches(want, m.platform)) ?? (index.manifests.length === 1 ? index.manifests[0] : undefined)
          if (!pick)
            throw new LadingError(
              'PLATFORM_NOT_FOUND',
              `${name}: no image for ${formatPlatform(want)} (available: ${platforms.join(', ') || 'none'}); use --platform`,
            )
          raw = await getManifest(pick.digest)
          mediaType = raw.mediaType || manifestMediaType(raw.bytes, name)
        }
        checkIndexDepth(depth, name)
        const manifest: Manifest = parseManifest(raw.bytes, `${name} (manifest ${raw.digest})`, mediaType)
        const configBytes = await getSmallBlob(manifest.config)
        if (opts.config) {
          process.stdout.write(configBytes)
          return
        }
        const config: ImageConfig = parseConfig(configBytes, `${name} (config ${manifest.config.digest})`)
        const summary = summarizeImage({ mediaType, digest: raw.digest, size: raw.bytes.length }, manifest, config, {
          name: shownName,
          repoTags: await repoTags,
          ...(indexInfo ? { index: indexInfo } : {}),
        })
        printJson(summary)
      } finally {
        await close()
      }
    })
}
