/**
 * `docker://[REGISTRY/]REPO[:TAG][@DIGEST]` for the registry commands (list-tags, delete,
 * login). The general reference parser (src/transport/reference.ts) owns every transport;
 * this one is the docker:// grammar alone, with skopeo's defaults (docker.io, library/).
 */
import { LadingError } from '../../errors.js'
import { parseDigest } from '../../digest/digest.js'
import { normalizeDockerReference } from './names.js'
import type { DockerReference } from './source.js'

/** distribution-spec §Pulling manifests: a tag is at most 128 characters of this grammar. */
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/

export function parseDockerReference(input: string): DockerReference {
  const expected = 'expected docker://[REGISTRY/]REPO[:TAG|@DIGEST]'
  let s = input
  if (s.startsWith('docker://')) s = s.slice('docker://'.length)
  else if (s.startsWith('docker:')) throw new LadingError('USAGE', `invalid reference ${JSON.stringify(input)}: ${expected}`)
  if (!s) throw new LadingError('USAGE', `invalid reference ${JSON.stringify(input)}: ${expected}`)
  let digest: string | undefined
  const at = s.indexOf('@')
  if (at >= 0) {
    digest = s.slice(at + 1)
    s = s.slice(0, at)
  }
  let tag: string | undefined
  const colon = s.lastIndexOf(':')
  if (colon > s.lastIndexOf('/')) {
    tag = s.slice(colon + 1)
    s = s.slice(0, colon)
    if (!TAG.test(tag)) throw new LadingError('USAGE', `invalid reference ${JSON.stringify(input)}: invalid tag ${JSON.stringify(tag)} (${expected})`)
  }
  let name
  try {
    name = normalizeDockerReference(s)
  } catch (e) {
    throw new LadingError('USAGE', `invalid reference ${JSON.stringify(input)}: ${(e as Error).message} (${expected})`, { cause: e })
  }
  const ref: DockerReference = { transport: 'docker', registry: name.registry, repository: name.repository }
  if (tag !== undefined) ref.tag = tag
  if (digest !== undefined) {
    try {
      ref.digest = parseDigest(digest)
    } catch (e) {
      throw new LadingError('USAGE', `invalid reference ${JSON.stringify(input)}: ${(e as Error).message}`, { cause: e })
    }
  }
  return ref
}

export function formatDockerReference(r: DockerReference): string {
  return `docker://${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`
}
