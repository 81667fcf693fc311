/** The distribution-spec client and the docker:// transport. */
export { RegistryClient, MANIFEST_ACCEPT, referrersTag, nextLink, sniffManifestMediaType, type UploadResult } from './client.js'
export { MONOLITHIC_MAX, type UploadOptions } from './blob-upload.js'
export { RegistryConnection, mergeScopes, proxySettings, type RegistryOptions, type RegistryClientOptions } from './connection.js'
export { RegistrySource, registrySource, type DockerReference } from './source.js'
export { RegistryDestination, registryDestination } from './destination.js'
export { parseDockerReference, formatDockerReference } from './docker-reference.js'
export { normalizeDockerReference, registryEndpointHost, isLoopbackRegistry, normalizeAuthKey, DOCKER_HUB, type RegistryRepository } from './names.js'
export type { RetryOptions } from './retry.js'
