/** docker-archive: `docker save` tarballs, as a registered transport (../open.ts). */
import { DOCKER_ARCHIVE_CAPABILITIES } from '../capabilities.js'
import { REFERENCE_SYNTAX } from '../reference.js'
import type { Transport } from '../types.js'

export const dockerArchiveTransport: Transport<'docker-archive'> = {
  ...REFERENCE_SYNTAX['docker-archive'],
  capabilities: DOCKER_ARCHIVE_CAPABILITIES,
  openSource: async (ref, opts) => (await import('./source.js')).dockerArchiveSource(ref, opts),
  openDestination: async (ref, opts) => (await import('./destination.js')).dockerArchiveDestination(ref, opts),
}
