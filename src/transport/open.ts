/**
 * Dispatch an ImageReference to its transport. Each transport module is loaded on demand, so
 * importing this file (from the CLI or the library entry) stays cheap.
 */
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
    case 'docker': return (await import('./registry/source.js')).registrySource(r, registryOptions(opts))
  }
}

export async function openDestination(r: ImageReference, opts: TransportOptions = {}): Promise<ImageDestination> {
  switch (r.transport) {
    case 'oci': return (await import('./oci/destination.js')).ociDestination(r, opts)
    case 'oci-archive': return (await import('./oci-archive/destination.js')).ociArchiveDestination(r, opts)
    case 'docker-archive': return (await import('./docker-archive/destination.js')).dockerArchiveDestination(r, opts)
    case 'dir': return (await import('./dir/destination.js')).dirDestination(r, opts)
    case 'docker': return (await import('./registry/destination.js')).registryDestination(r, registryOptions(opts))
  }
}

function registryOptions(o: TransportOptions): { tlsVerify?: boolean; certDir?: string; creds?: { username: string; password: string }; authFile?: string } {
  return {
    ...(o.tlsVerify !== undefined ? { tlsVerify: o.tlsVerify } : {}),
    ...(o.certDir !== undefined ? { certDir: o.certDir } : {}),
    ...(o.creds !== undefined ? { creds: o.creds } : {}),
    ...(o.authFile !== undefined ? { authFile: o.authFile } : {}),
  }
}
