/**
 * The RepoTags of `inspect docker://`: the repository's tags as skopeo inspect lists them,
 * from the reference's own registry (registries.conf: blocked and insecure apply; mirrors do
 * not, as in containers/image's GetRepositoryTags). As skopeo, a registry that refuses to list
 * tags (401 or 403: some allow pulls but not the listing) is not a failure of the inspect: the
 * list is empty and `warn` says why. Any other failure is.
 */
import { isLadingError } from '../../errors.js'
import { RegistryClient, type RegistryOptions } from './client.js'
import type { DockerReference } from '../types.js'
import { directRegistryOptions } from '../registries-conf.js'

export async function listRepoTags(ref: DockerReference, opts: RegistryOptions, warn: (message: string) => void): Promise<string[]> {
  const client = new RegistryClient({ ...directRegistryOptions(ref, opts), registry: ref.registry })
  try {
    return await client.listTags(ref.repository)
  } catch (e) {
    if (!isLadingError(e, 'UNAUTHORIZED') && !isLadingError(e, 'DENIED')) throw e
    warn(`the registry does not allow listing tags; RepoTags left empty (${e.message})`)
    return []
  } finally {
    await client.close()
  }
}
