/**
 * `lading list-tags docker://[REGISTRY/]REPO`: every tag of a repository as JSON, the shape
 * skopeo prints: {"Repository": "registry/repo", "Tags": [...]}. Pagination is followed.
 */
import type { Command } from 'commander'

export function register(program: Command): void {
  program
    .command('list-tags')
    .description('list the tags of a repository in a registry (JSON, like skopeo list-tags)')
    .argument('<repository>', 'docker://[REGISTRY/]REPO (no tag or digest)')
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates; false also allows plain HTTP (default true)')
    .option('--cert-dir <dir>', 'directory with *.crt CAs and a *.cert/*.key client certificate')
    .option('--creds <user:pass>', 'credentials for the registry')
    .option('--authfile <file>', 'auth file to read credentials from')
    .option('--page-size <n>', 'tags to ask for per request (the registry may cap it)')
    .action(async (repository: string, opts: { tlsVerify?: string | boolean; certDir?: string; creds?: string; authfile?: string; pageSize?: string }) => {
      const { LadingError } = await import('../../errors.js')
      const { parseRegistryReference } = await import('../../transport/reference.js')
      const { registryOptionsFromFlags } = await import('../../transport/registry/cli-options.js')
      const { RegistryClient } = await import('../../transport/registry/client.js')
      const { printJson } = await import('../util.js')
      const ref = parseRegistryReference(repository)
      if (ref.tag !== undefined || ref.digest !== undefined) {
        throw new LadingError('USAGE', `list-tags: ${JSON.stringify(repository)} names an image; give the repository only (docker://REGISTRY/REPO)`)
      }
      let pageSize: number | undefined
      if (opts.pageSize !== undefined) {
        pageSize = Number(opts.pageSize)
        if (!Number.isSafeInteger(pageSize) || pageSize < 1)
          throw new LadingError('USAGE', `--page-size: expected a positive integer, got ${JSON.stringify(opts.pageSize)}`)
      }
      const { directRegistryOptions } = await import('../../transport/registries-conf.js')
      const client = new RegistryClient({ ...directRegistryOptions(ref, registryOptionsFromFlags(opts)), registry: ref.registry })
      try {
        const tags = await client.listTags(ref.repository, pageSize ? { pageSize } : {})
        printJson({ Repository: `${ref.registry}/${ref.repository}`, Tags: tags })
      } finally {
        await client.close()
      }
    })
}
