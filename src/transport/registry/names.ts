/**
 * Registry and repository names as docker and skopeo spell them. A reference without a
 * registry means Docker Hub (`docker.io`), whose API endpoint is `registry-1.docker.io`, and a
 * single-component Hub repository lives under `library/` (`busybox` -> `docker.io/library/busybox`).
 * The first component is a registry when it has a `.` or a `:` or is `localhost` (the rule of
 * docker/distribution's reference package, which skopeo uses).
 */
import { LadingError } from '../../errors.js'

export const DOCKER_HUB = 'docker.io'
export const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io'

/** distribution-spec §Pulling manifests: the grammar of `<name>` (one path component each). */
const NAME_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/
/** host[:port], where host is a DNS name or an IPv4/bracketed IPv6 literal. */
const REGISTRY_HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/

export interface RegistryRepository { registry: string; repository: string }

/** True for a valid repository name (distribution-spec §Pulling manifests), at most 255 characters with its registry. */
export function isValidRepository(name: string): boolean {
  return name.length > 0 && name.length <= 255 && name.split('/').every((c) => NAME_COMPONENT.test(c))
}

export function isValidRegistryHost(host: string): boolean {
  return REGISTRY_HOST.test(host)
}

/**
 * `[REGISTRY/]REPO` (no tag or digest) -> the registry and the full repository path, with the
 * docker.io and `library/` defaults applied. INVALID_REFERENCE naming the problem otherwise.
 */
export function normalizeDockerReference(registryAndRepo: string): RegistryRepository {
  const s = registryAndRepo
  if (!s) throw new LadingError('INVALID_REFERENCE', 'empty repository name')
  const slash = s.indexOf('/')
  let registry = DOCKER_HUB
  let repository = s
  if (slash > 0) {
    const first = s.slice(0, slash)
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first
      repository = s.slice(slash + 1)
    }
  }
  if (!isValidRegistryHost(registry)) {
    throw new LadingError('INVALID_REFERENCE', `invalid registry ${JSON.stringify(registry)} in ${JSON.stringify(s)}: expected host[:port]`)
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_ENDPOINT) registry = DOCKER_HUB
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`
  if (!isValidRepository(repository)) {
    throw new LadingError('INVALID_REFERENCE', `invalid repository name ${JSON.stringify(repository)} in ${JSON.stringify(s)}: expected lowercase components [a-z0-9] separated by '.', '_', '__', '-' or '/'`)
  }
  return { registry, repository }
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
 */
export function normalizeAuthKey(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '')
  k = k.replace(/\/+$/, '')
  k = k.replace(/\/v[12]$/, '')
  if (k === 'index.docker.io' || k === DOCKER_HUB_ENDPOINT || k === 'registry.hub.docker.com') return DOCKER_HUB
  return k
}

/** The string `docker://registry/repository` used in error messages. */
export function displayRepository(registry: string, repository: string): string {
  return `docker://${registry}/${repository}`
}
