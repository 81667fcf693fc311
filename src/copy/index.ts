/**
 * `lading/copy`: the copy engine. `copy(from, to, options)` opens, copies and closes; copyImage
 * copies between a source and a destination the caller holds open.
 */
export { copy, type CopyCallOptions } from './copy-references.js'
export { copyImage, type CopyOptions, type CopyResult } from './copy.js'
export type { CopyEvent, ProgressCallback } from './events.js'
