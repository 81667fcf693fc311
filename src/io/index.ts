/** `lading/io`: layer compression (gzip, zstd, none), detected from the bytes, and the size limits. */
export { detectCompression, decompress, compress, type Compression } from './compression.js'
export { MAX_INDEX_DEPTH, checkIndexDepth } from './limits.js'
export { withLock } from './lock.js'
