/**
 * `lading delete docker://REF`: delete an image's manifest from a registry, as skopeo does: a
 * tag is first resolved to its digest (HEAD), then the manifest is deleted by digest
 * (distribution-spec §Deleting Manifests), which removes every tag pointing at it.
 */
import type { Command } from 'commander'

export function register(program: Command): void {
  program
    .command('delete')
    .description('delete an image (its manifest, by digest) from a registry')
    .argument('<image>', 'docker://[REGISTRY/]REPO[:TAG|@DIGEST]')
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates; false also allows plain HTTP (default true)')
    .option('--cert-dir <dir>', 'directory with *.crt CAs and a *.cert/*.key client certificate')
    .option('--creds <user:pass>', 'credentials for the registry')
    .option('--authfile <file>', 'auth file to read credentials from')
    .action(async (image: string, opts: { tlsVerify?: string | boolean; certDir?: string; creds?: string; authfile?: string }) => {
      const { LadingError } = await import('../../errors.js')
      const { parseRegistryReference, formatReference } = await import('../../transport/reference.js')
      const { registryOptionsFromFlags } = await import('../../transport/registry/cli-options.js')
      const { RegistryClient } = await import('../../transport/registry/client.js')
      const ref = parseRegistryReference(image)
      const { directRegistryOptions } = await import('../../transport/registries-conf.js')
      const client = new RegistryClient({ ...directRegistryOptions(ref, registryOptionsFromFlags(opts)), registry: ref.registry })
      try {
        let digest = ref.digest
        if (!digest) {
          const tag = ref.tag ?? 'latest'
          const desc = await client.headManifest(ref.repository, tag)
          if (!desc) throw new LadingError('MANIFEST_UNKNOWN', `${formatReference({ ...ref, tag })}: no such image`)
          digest = desc.digest
        }
        await client.deleteManifest(ref.repository, digest)
      } finally {
        await client.close()
      }
    })
}
