/** The distribution-spec client and the docker:// transport. */
export { RegistryClient, MANIFEST_ACCEPT, mergeScopes, referrersTag, nextLink, type RegistryOptions, type RegistryClientOptions, type UploadResult } from './client.js'
export { RegistrySource, registrySource, type DockerReference } from './source.js'
export { RegistryDestination, registryDestination } from './destination.js'
export { normalizeDockerReference, registryEndpointHost, isLoopbackRegistry, normalizeAuthKey, DOCKER_HUB, type RegistryRepository } from './names.js'
export type { RetryOptions } from './retry.js'
