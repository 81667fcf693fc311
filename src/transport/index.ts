/**
 * `lading/transport`: every place an image lives (oci:, oci-archive:, docker-archive:, dir:,
 * docker://) as a reference syntax and a source and destination to open; the registry client.
 * Sources and destinations are AsyncDisposable: `await using src = await openSource(ref)`.
 */
export type { ImageReference, ImageSource, ImageDestination, DestinationCapabilities, Transport, TransportName, TransportOptions } from './types.js'
export { parseReference, formatReference, displayReference } from './reference.js'
export { openSource, openDestination, transportOf, TRANSPORTS } from './open.js'
export { RegistryClient, type RegistryOptions } from './registry/index.js'
