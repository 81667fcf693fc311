/**
 * The one Docker reference grammar, for every place a Docker name appears: `docker://`
 * references, docker-archive names and RepoTags, the registry commands (list-tags, delete),
 * auth-file keys and credential-helper lookups. It follows distribution/reference (the package
 * docker and, through its fork in containers/image, skopeo use):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]      (the tag is after a ':' that follows the last '/')
 *   name      := [ registry "/" ] component ( "/" component )*
 *
 * Normalisation (distribution/reference normalize.go, splitDockerDomain):
 * - the first component is a registry when it contains '.' or ':' or is `localhost` (the "domain
 *   heuristic"); otherwise the registry is Docker Hub, `docker.io`;
 * - `index.docker.io` (the legacy index) is Docker Hub. So is `registry-1.docker.io`, Hub's API
 *   endpoint (docker's registry.DefaultRegistryHost): distribution/reference leaves it alone, but
 *   then the same server would be reached under two names, with two sets of credentials and
 *   without `library/`; docker's auth code folds it the same way;
 * - a one-component repository on Docker Hub gets `library/` (`busybox` -> `docker.io/library/busybox`).
 *
 * Grammar: components as distribution-spec §Pulling manifests (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`);
 * tags `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (distribution-spec §Pulling manifests); the whole
 * normalised name at most 255 characters (distribution/reference NameTotalLengthMax); a registry
 * is a DNS name or an IPv4 or bracketed IPv6 literal with an optional port. distribution/reference
 * takes any run of digits as a port; we refuse one outside 1..65535 here, where it can be named,
 * rather than at connect time. A bare 64-hex name is an image ID, not a repository (as
 * ParseNormalizedNamed refuses it).
 *
 * Errors are INVALID_REFERENCE saying what is wrong; the command-line parsers (./reference.ts)
 * turn them into usage errors naming the expected form.
 */
import { parseDigest, type Digest } from '../digest/digest.js'
import { LadingError } from '../errors.js'

export const DOCKER_HUB = 'docker.io'
export const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io'
/** Other names of Docker Hub in references (see above). */
const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['index.docker.io', DOCKER_HUB_ENDPOINT])
/** With neither tag nor digest, an image reference means this tag (docker, skopeo). */
export const DEFAULT_TAG = 'latest'

/** distribution-spec §Pulling manifests: the grammar of one component of `<name>`. */
const NAME_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/
/** distribution-spec §Pulling manifests: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
/** host[:port], where host is a DNS name or an IPv4/bracketed IPv6 literal (distribution/reference domainAndPort). */
const REGISTRY_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::([0-9]+))?$/
const IMAGE_ID = /^[a-f0-9]{64}$/
const NAME_TOTAL_LENGTH_MAX = 255

export interface DockerName {
  registry: string
  repository: string
}
export interface DockerReferenceParts extends DockerName {
  tag?: string
  digest?: Digest
}

function invalid(why: string): LadingError {
  return new LadingError('INVALID_REFERENCE', why)
}

/** True for a valid repository path alone (distribution-spec §Pulling manifests), at most 255 characters. */
export function isValidRepository(name: string): boolean {
  return name.length > 0 && name.length <= NAME_TOTAL_LENGTH_MAX && name.split('/').every((c) => NAME_COMPONENT.test(c))
}

/** True for `host[:port]` with a port in 1..65535. */
export function isValidRegistryHost(host: string): boolean {
  const m = REGISTRY_HOST.exec(host)
  if (!m) return false
  return m[1] === undefined || (Number(m[1]) >= 1 && Number(m[1]) <= 65535)
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag)
}

/**
 * `[REGISTRY/]REPO` (no tag or digest) -> the registry and the full repository path, normalised
 * as described at the top of this file.
 */
export function parseDockerName(name: string): DockerName {
  if (name === '') throw invalid('empty repository name')
  if (IMAGE_ID.test(name)) throw invalid(`${JSON.stringify(name)} is a 64-character hexadecimal image ID, not a repository name`)
  let registry = DOCKER_HUB
  let repository = name
  const slash = name.indexOf('/')
  if (slash > 0) {
    const first = name.slice(0, slash)
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      if (!isValidRegistryHost(first)) throw invalid(`invalid registry ${JSON.stringify(first)}: expected host[:port] with a port in 1..65535`)
      registry = DOCKER_HUB_ALIASES.has(first) ? DOCKER_HUB : first
      repository = name.slice(slash + 1)
    }
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`
  for (const c of repository.split('/')) {
    if (!NAME_COMPONENT.test(c)) {
      const hint = /[A-Z]/.test(c) ? ' (repository names must be lowercase)' : ''
      throw invalid(`invalid repository component ${JSON.stringify(c)}${hint}`)
    }
  }
  if (registry.length + 1 + repository.length > NAME_TOTAL_LENGTH_MAX) throw invalid(`repository name longer than ${NAME_TOTAL_LENGTH_MAX} characters`)
  return { registry, repository }
}

/** `NAME[:TAG][@DIGEST]` -> its normalised parts; no tag is defaulted (callers decide, see DEFAULT_TAG). */
export function parseDockerReference(s: string): DockerReferenceParts {
  let rest = s
  let digest: Digest | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1))
    } catch (e) {
      throw new LadingError('INVALID_REFERENCE', (e as Error).message, { cause: e })
    }
    rest = rest.slice(0, at)
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw invalid(`invalid tag ${JSON.stringify(tag)}`)
  }
  return { ...parseDockerName(rest), ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) }
}

/** `registry/repository[:tag][@digest]`, the canonical spelling (no transport prefix). */
export function formatDockerReference(r: DockerReferenceParts): string {
  return `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`
}

/** The host[:port] to connect to for a registry name (Docker Hub's API lives elsewhere). */
export function registryEndpointHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry
}

/** Loopback registries are reached over plain HTTP when TLS verification is off. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, '')
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/**
 * Normalise a key of an auth file (`auths`) or a login argument to the registry it names:
 * `https://index.docker.io/v1/` -> `docker.io`, `http://host:5000/v2/` -> `host:5000`.
 * containers/image also allows `registry/namespace` keys; those keep their path.
 * `registry.hub.docker.com` is one more name docker's auth code gives Hub in config files.
 */
export function normalizeAuthKey(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '')
  k = k.replace(/\/+$/, '')
  k = k.replace(/\/v[12]$/, '')
  if (DOCKER_HUB_ALIASES.has(k) || k === 'registry.hub.docker.com') return DOCKER_HUB
  return k
}
