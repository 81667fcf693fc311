/** oci: an OCI image layout directory, as a registered transport (../open.ts). */
import { OCI_CAPABILITIES } from '../capabilities.js'
import { REFERENCE_SYNTAX } from '../reference.js'
import type { Transport } from '../types.js'

export const ociTransport: Transport<'oci'> = {
  ...REFERENCE_SYNTAX.oci,
  capabilities: OCI_CAPABILITIES,
  openSource: async (ref, opts) => (await import('./source.js')).ociSource(ref, opts),
  openDestination: async (ref, opts) => (await import('./destination.js')).ociDestination(ref, opts),
}
