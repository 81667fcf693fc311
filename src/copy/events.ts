/**
 * Progress events of a copy, delivered to CopyOptions.onProgress in the order they happen: the
 * events every long blob operation reports (src/io/progress.ts).
 */
export type { BlobAction, ProgressEvent as CopyEvent, ProgressCallback } from '../io/progress.js'
