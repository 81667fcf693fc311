/**
 * Dispatch an ImageReference to its transport. Each transport module is loaded on demand, so
 * importing this file (from the CLI or the library entry) stays cheap.
 */
import type { RetryOptions } from './registry/retry.js'
import type { ImageDestination, ImageReference, ImageSource } from './types.js'

/** Options for every transport; the registry ones are passed through to the registry transport. */
export interface TransportOptions {
  /** Registry: verify TLS (default true); false also allows plain HTTP, as skopeo's --tls-verify=false. */
  tlsVerify?: boolean
  /** Registry: a directory of *.crt CAs and *.cert/*.key client certificates (containers-certs.d). */
  certDir?: string
  /** Registry: credentials given on the command line (USER:PASS). */
  creds?: { username: string; password: string }
  /** Registry: an auth file instead of the default ones. */
  authFile?: string
  /** Registry: attempts for transient failures (skopeo's --retry-times N is attempts N+1). */
  retry?: RetryOptions
  /** Where archive transports spool temporary files (default os.tmpdir(), or beside the target). */
  tmpDir?: string
  /** Destination streams for `docker-archive:-`; default process.stdout. */
  stdout?: NodeJS.WritableStream
  /** Source stream for `docker-archive:-`/`oci-archive:-`; default process.stdin. */
  stdin?: NodeJS.ReadableStream
}

export async function openSource(r: ImageReference, opts: TransportOptions = {}): Promise<ImageSource> {
  switch (r.transport) {
    case 'oci': return (await import('./oci/source.js')).ociSource(r, opts)
    case 'oci-archive': return (await import('./oci-archive/source.js')).ociArchiveSource(r, opts)
    case 'docker-archive': return (await import('./docker-archive/source.js')).dockerArchiveSource(r, opts)
    case 'dir': return (await import('./dir/source.js')).dirSource(r, opts)
    case 'docker': return registrySourceFor(r, registryOptions(opts))
  }
}

export async function openDestination(r: ImageReference, opts: TransportOptions = {}): Promise<ImageDestination> {
  switch (r.transport) {
    case 'oci': return (await import('./oci/destination.js')).ociDestination(r, opts)
    case 'oci-archive': return (await import('./oci-archive/destination.js')).ociArchiveDestination(r, opts)
    case 'docker-archive': return (await import('./docker-archive/destination.js')).dockerArchiveDestination(r, opts)
    case 'dir': return (await import('./dir/destination.js')).dirDestination(r, opts)
    case 'docker': return registryDestinationFor(r, registryOptions(opts))
  }
}

type DockerRef = Extract<ImageReference, { transport: 'docker' }>
type RegistryOpts = ReturnType<typeof registryOptions>

/** A registry source after registries.conf: blocked, moved, insecure, or pulled through mirrors. */
async function registrySourceFor(r: DockerRef, opts: RegistryOpts): Promise<ImageSource> {
  const [{ processRegistriesConf, pullEndpoints, endpointOptions }, { registrySource }, { MirroredSource }] = await Promise.all([
    import('./registry/registries-conf.js'), import('./registry/source.js'), import('./registry/mirrored-source.js'),
  ])
  const endpoints = pullEndpoints(processRegistriesConf(), r)
  if (endpoints.length === 1) return registrySource(endpoints[0]!.ref, endpointOptions(opts, endpoints[0]!))
  return new MirroredSource(endpoints, opts)
}

/** A registry destination after registries.conf: blocked or insecure (moving and mirrors are for pulls only, as in containers/image). */
async function registryDestinationFor(r: DockerRef, opts: RegistryOpts): Promise<ImageDestination> {
  const [{ directRegistryOptions }, { registryDestination }] = await Promise.all([import('./registry/registries-conf.js'), import('./registry/destination.js')])
  return registryDestination(r, directRegistryOptions(r, opts))
}

function registryOptions(o: TransportOptions): { tlsVerify?: boolean; certDir?: string; creds?: { username: string; password: string }; authFile?: string; retry?: RetryOptions } {
  return {
    ...(o.retry !== undefined ? { retry: o.retry } : {}),
    ...(o.tlsVerify !== undefined ? { tlsVerify: o.tlsVerify } : {}),
    ...(o.certDir !== undefined ? { certDir: o.certDir } : {}),
    ...(o.creds !== undefined ? { creds: o.creds } : {}),
    ...(o.authFile !== undefined ? { authFile: o.authFile } : {}),
  }
}
