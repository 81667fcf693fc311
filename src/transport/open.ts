/**
 * The table of transports: each is a registered object (./types.ts Transport) with its
 * reference syntax, its capabilities and how to open a source or a destination. Opening
 * dispatches through this table; each transport's code is loaded on demand, so importing this
 * file (from the CLI or the library entry) stays cheap.
 */
import { dirTransport } from './dir/transport.js'
import { dockerArchiveTransport } from './docker-archive/transport.js'
import { ociArchiveTransport } from './oci-archive/transport.js'
import { ociTransport } from './oci/transport.js'
import { registryTransport } from './registry/transport.js'
import type { ImageDestination, ImageReference, ImageSource, Transport, TransportName, TransportOptions } from './types.js'

export type { TransportOptions } from './types.js'

export const TRANSPORTS: { readonly [N in TransportName]: Transport<N> } = {
  oci: ociTransport,
  'oci-archive': ociArchiveTransport,
  'docker-archive': dockerArchiveTransport,
  dir: dirTransport,
  docker: registryTransport,
}

/** The transport of a reference (its parse, format, capabilities and openers). */
export function transportOf(r: ImageReference): Transport {
  return TRANSPORTS[r.transport] as Transport
}

export function openSource(r: ImageReference, opts: TransportOptions = {}): Promise<ImageSource> {
  return transportOf(r).openSource(r, opts)
}

export function openDestination(r: ImageReference, opts: TransportOptions = {}): Promise<ImageDestination> {
  return transportOf(r).openDestination(r, opts)
}
