/** oci-archive: a tar of an OCI image layout, as a registered transport (../open.ts). */
import { OCI_CAPABILITIES } from '../capabilities.js'
import { REFERENCE_SYNTAX } from '../reference.js'
import type { Transport } from '../types.js'

export const ociArchiveTransport: Transport<'oci-archive'> = {
  ...REFERENCE_SYNTAX['oci-archive'],
  capabilities: OCI_CAPABILITIES,
  openSource: async (ref, opts) => (await import('./source.js')).ociArchiveSource(ref, opts),
  openDestination: async (ref, opts) => (await import('./destination.js')).ociArchiveDestination(ref, opts),
}
