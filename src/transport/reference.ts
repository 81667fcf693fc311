/**
 * Image references, spelled as skopeo spells them:
 *
 *   oci:DIR[:TAG]            oci:DIR@DIGEST (also oci:DIR:@DIGEST)
 *   oci-archive:FILE[:TAG]
 *   docker-archive:FILE[:NAME[:TAG]]   docker-archive:FILE:@N  (the Nth image in the archive, sources only)
 *   dir:DIR
 *   docker://[REGISTRY/]REPO[:TAG|@DIGEST]
 *
 * As in containers/image, the path of a file transport ends at its FIRST colon (so a tag may
 * contain '/' or ':' as image-layout.md §ref.name allows, and a docker-archive name may carry a
 * registry port); a path containing ':' therefore cannot be named, exactly as with skopeo.
 *
 * Docker references follow the distribution reference grammar: the first component is a registry
 * when it contains '.' or ':' or is `localhost` (the "domain heuristic"); otherwise the registry is
 * docker.io and a single-component repository gets `library/`. With neither tag nor digest the
 * tag is `latest`, as skopeo does.
 *
 * `formatReference(parseReference(s))` is a canonical spelling that parses back to the same value.
 */
import { parseDigest, type Digest } from '../digest/digest.js'
import { LadingError } from '../errors.js'
import { parseLayoutImage, splitPath } from '../store/image-name.js'
import type { ImageReference } from './types.js'

export { openSource, openDestination, type TransportOptions } from './open.js'

export const DEFAULT_REGISTRY = 'docker.io'
export const DEFAULT_TAG = 'latest'

const FORMS = [
  'oci:DIR[:TAG|@DIGEST]',
  'oci-archive:FILE[:TAG]',
  'docker-archive:FILE[:NAME[:TAG]|:@N]',
  'dir:DIR',
  'docker://[REGISTRY/]REPO[:TAG|@DIGEST]',
]

// distribution/reference grammar (reference.go): path components, tags and domains.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const DOCKER_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
const DOMAIN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$/

function bad(input: string, form: string, why: string): LadingError {
  return new LadingError('USAGE', `invalid image reference ${JSON.stringify(input)}: ${why} (expected ${form})`)
}

function digestOrUsage(s: string, input: string, form: string): Digest {
  try {
    return parseDigest(s)
  } catch (e) {
    throw bad(input, form, (e as Error).message)
  }
}

export interface DockerName { registry: string; repository: string }

/**
 * Normalise a Docker image name (no tag or digest) to registry + repository with skopeo's rules:
 * the domain heuristic, docker.io by default (index.docker.io is docker.io), `library/` for a
 * single component on docker.io. Throws USAGE naming what is wrong.
 */
export function parseDockerName(name: string, input = name, form = FORMS[4]!): DockerName {
  if (name === '') throw bad(input, form, 'empty repository name')
  const slash = name.indexOf('/')
  let registry = DEFAULT_REGISTRY
  let rest = name
  if (slash > 0) {
    const first = name.slice(0, slash)
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      if (!DOMAIN.test(first)) throw bad(input, form, `invalid registry ${JSON.stringify(first)}`)
      registry = first === 'index.docker.io' ? DEFAULT_REGISTRY : first
      rest = name.slice(slash + 1)
    }
  }
  if (registry === DEFAULT_REGISTRY && !rest.includes('/')) rest = `library/${rest}`
  for (const c of rest.split('/')) {
    if (!PATH_COMPONENT.test(c)) {
      const hint = /[A-Z]/.test(c) ? ' (repository names must be lowercase)' : ''
      throw bad(input, form, `invalid repository component ${JSON.stringify(c)}${hint}`)
    }
  }
  if (registry.length + 1 + rest.length > 255) throw bad(input, form, 'repository name longer than 255 characters')
  return { registry, repository: rest }
}

/** `NAME[:TAG][@DIGEST]` as in distribution/reference: the tag is after a colon that follows the last slash. */
function splitDockerRef(s: string, input: string, form: string): { name: string; tag?: string; digest?: Digest } {
  let rest = s
  let digest: Digest | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = digestOrUsage(rest.slice(at + 1), input, form)
    rest = rest.slice(0, at)
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!DOCKER_TAG.test(tag)) throw bad(input, form, `invalid tag ${JSON.stringify(tag)}`)
  }
  return { name: rest, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) }
}

function parseOciLike(input: string, body: string, form: string, allowDigest: boolean): { path: string; tag?: string; digest?: Digest } {
  return parseLayoutImage(body, allowDigest, (why) => bad(input, form, why))
}

export function parseReference(s: string): ImageReference {
  if (typeof s !== 'string' || s === '') throw new LadingError('USAGE', `empty image reference (expected one of ${FORMS.join(', ')})`)
  if (s.startsWith('docker://')) {
    const form = FORMS[4]!
    const body = s.slice('docker://'.length)
    const { name, tag, digest } = splitDockerRef(body, s, form)
    const { registry, repository } = parseDockerName(name, s, form)
    return {
      transport: 'docker', registry, repository,
      ...(tag !== undefined ? { tag } : digest === undefined ? { tag: DEFAULT_TAG } : {}),
      ...(digest !== undefined ? { digest } : {}),
    }
  }
  const colon = s.indexOf(':')
  const transport = colon < 0 ? '' : s.slice(0, colon)
  const body = s.slice(colon + 1)
  switch (transport) {
    case 'oci': {
      const r = parseOciLike(s, body, FORMS[0]!, true)
      return { transport: 'oci', dir: r.path, ...(r.tag !== undefined ? { tag: r.tag } : {}), ...(r.digest !== undefined ? { digest: r.digest } : {}) }
    }
    case 'oci-archive': {
      const r = parseOciLike(s, body, FORMS[1]!, false)
      return { transport: 'oci-archive', file: r.path, ...(r.tag !== undefined ? { tag: r.tag } : {}) }
    }
    case 'docker-archive': {
      const form = FORMS[2]!
      const [file, rest] = splitPath(body)
      if (file === '') throw bad(s, form, 'empty path')
      if (rest === undefined) return { transport: 'docker-archive', file }
      if (rest.startsWith('@')) {
        if (!/^@\d{1,6}$/.test(rest)) throw bad(s, form, `invalid image index ${JSON.stringify(rest)}`)
        return { transport: 'docker-archive', file, sourceIndex: Number(rest.slice(1)) }
      }
      const { name, tag, digest } = splitDockerRef(rest, s, form)
      if (digest !== undefined) throw bad(s, form, 'a docker-archive name cannot carry a digest')
      parseDockerName(name, s, form) // validates
      return { transport: 'docker-archive', file, name, tag: tag ?? DEFAULT_TAG }
    }
    case 'dir': {
      if (body === '') throw bad(s, FORMS[3]!, 'empty path')
      return { transport: 'dir', dir: body }
    }
    default:
      throw new LadingError('USAGE', `invalid image reference ${JSON.stringify(s)}: unknown transport ${JSON.stringify(transport || s)} (expected one of ${FORMS.join(', ')})`)
  }
}

/** A path that cannot be spelled (its first colon would end it) is refused rather than mis-spelled. */
function spellablePath(transport: string, p: string): string {
  if (p.includes(':')) throw new LadingError('USAGE', `cannot write a ${transport}: reference for ${JSON.stringify(p)}: the path contains ':', which ends the path in this syntax`)
  return p
}

export function formatReference(r: ImageReference): string {
  if (r.transport === 'oci') spellablePath(r.transport, r.dir)
  if (r.transport === 'oci-archive' || r.transport === 'docker-archive') spellablePath(r.transport, r.file)
  switch (r.transport) {
    case 'oci':
      return `oci:${r.dir}${r.digest !== undefined ? `@${r.digest}` : r.tag !== undefined ? `:${r.tag}` : ''}`
    case 'oci-archive':
      return `oci-archive:${r.file}${r.tag !== undefined ? `:${r.tag}` : ''}`
    case 'docker-archive':
      if (r.sourceIndex !== undefined) return `docker-archive:${r.file}:@${r.sourceIndex}`
      return `docker-archive:${r.file}${r.name !== undefined ? `:${r.name}:${r.tag ?? DEFAULT_TAG}` : ''}`
    case 'dir':
      return `dir:${r.dir}`
    case 'docker':
      return `docker://${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`
  }
}

/** The normalised `registry/repository:tag` of a docker-archive name (for RepoTags), as skopeo writes it. */
export function dockerArchiveRepoTag(name: string, tag: string): string {
  const n = parseDockerName(name)
  return `${n.registry}/${n.repository}:${tag}`
}
