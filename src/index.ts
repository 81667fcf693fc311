/**
 * Lading's library root: the few things most programs need. Copy an image between any two
 * places, name an image in a layout, open one end yourself, and tell Lading's errors apart.
 * Everything else is in the module subpaths, each with its own deliberate API (package.json
 * "exports"): lading/digest, lading/io, lading/spec, lading/store, lading/layer,
 * lading/bundle, lading/transport, lading/copy, lading/server, lading/build, lading/run.
 */
export { LadingError, isLadingError, type ErrorCode } from './errors.js'
export type { Digest } from './digest/digest.js'
export { copy, type CopyCallOptions } from './copy/copy-references.js'
export type { CopyOptions, CopyResult } from './copy/copy.js'
export { Layout } from './store/layout.js'
export { resolveImage, type ResolvedImage, type ImageSelector } from './store/resolve.js'
export { parseReference, formatReference } from './transport/reference.js'
export { openSource, openDestination } from './transport/open.js'
export type { ImageReference, ImageSource, ImageDestination, TransportOptions } from './transport/types.js'
