/**
 * docker:// (a registry, the distribution-spec client of this folder) as a registered transport
 * (../open.ts), after registries.conf: a source may be blocked, moved, insecure or pulled through
 * mirrors; a destination may be blocked or insecure (moving and mirrors are for pulls only, as in
 * containers/image).
 */
import { REGISTRY_CAPABILITIES } from '../capabilities.js'
import { REFERENCE_SYNTAX } from '../reference.js'
import type { ImageDestination, ImageSource, Transport, TransportOptions } from '../types.js'
import type { RegistryOptions } from './connection.js'

function registryOptions(o: TransportOptions): RegistryOptions {
  return {
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.retry !== undefined ? { retry: o.retry } : {}),
    ...(o.tlsVerify !== undefined ? { tlsVerify: o.tlsVerify } : {}),
    ...(o.certDir !== undefined ? { certDir: o.certDir } : {}),
    ...(o.creds !== undefined ? { creds: o.creds } : {}),
    ...(o.authFile !== undefined ? { authFile: o.authFile } : {}),
  }
}

export const registryTransport: Transport<'docker'> = {
  ...REFERENCE_SYNTAX.docker,
  capabilities: REGISTRY_CAPABILITIES,
  async openSource(ref, o): Promise<ImageSource> {
    const opts = registryOptions(o)
    const [{ processRegistriesConf, pullEndpoints, endpointOptions }, { registrySource }, { MirroredSource }] = await Promise.all([
      import('../registries-conf.js'),
      import('./source.js'),
      import('./mirrored-source.js'),
    ])
    const endpoints = pullEndpoints(processRegistriesConf(), ref)
    if (endpoints.length === 1) return registrySource(endpoints[0]!.ref, endpointOptions(opts, endpoints[0]!))
    return new MirroredSource(endpoints, opts)
  },
  async openDestination(ref, o): Promise<ImageDestination> {
    const [{ directRegistryOptions }, { registryDestination }] = await Promise.all([import('../registries-conf.js'), import('./destination.js')])
    return registryDestination(ref, directRegistryOptions(ref, registryOptions(o)))
  },
}
