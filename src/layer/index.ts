/**
 * `lading/layer`: layer tarballs. Read and write tar streams, apply a layer to a directory
 * (whiteouts, path safety), snapshot a tree and diff it into a new layer. Takes streams and
 * directories; knows nothing of stores.
 */
export { readTar, type TarEntry as TarReadEntry } from './tar-reader.js'
export { writeTar } from './tar-writer.js'
export { tarDirectory } from './tar-directory.js'
export { applyLayer, type ApplyOptions, type ApplyStats } from './apply.js'
export { parseIdMap, type IdMapping } from './id-map.js'
export { takeSnapshot, saveSnapshot, loadSnapshot, type Snapshot } from './snapshot.js'
export { diffLayer, type Change } from './diff.js'
