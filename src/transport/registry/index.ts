/** The distribution-spec client and the docker:// transport. */
export { RegistryClient, MANIFEST_ACCEPT, referrersTag, nextLink, type UploadResult } from './client.js'
export { MONOLITHIC_MAX, type UploadOptions } from './blob-upload.js'
export { RegistryConnection, mergeScopes, proxySettings, type RegistryOptions, type RegistryClientOptions } from './connection.js'
export { RegistrySource, registrySource } from './source.js'
export { RegistryDestination, registryDestination } from './destination.js'
export {
  parseDockerName,
  parseDockerReference,
  formatDockerReference,
  registryEndpointHost,
  isLoopbackRegistry,
  normalizeAuthKey,
  DOCKER_HUB,
  type DockerName,
  type DockerReferenceParts,
} from '../docker-reference.js'
export type { DockerReference } from '../types.js'
export type { RetryOptions } from './retry.js'
