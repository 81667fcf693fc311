/** dir: skopeo's directory format, as a registered transport (../open.ts). */
import { DIR_CAPABILITIES } from '../capabilities.js'
import { REFERENCE_SYNTAX } from '../reference.js'
import type { Transport } from '../types.js'

export const dirTransport: Transport<'dir'> = {
  ...REFERENCE_SYNTAX.dir,
  capabilities: DIR_CAPABILITIES,
  openSource: async (ref, opts) => (await import('./source.js')).dirSource(ref, opts),
  openDestination: async (ref, opts) => (await import('./destination.js')).dirDestination(ref, opts),
}
