/**
 * `lading/bundle`: images to runtime bundles and back (image-spec conversion.md): unpack an image
 * into a bundle or a rootfs, repack a bundle's changes as a new layer, insert files, append a layer.
 */
export { unpackBundle, unpackRootfs, type UnpackOptions, type UnpackResult } from './unpack.js'
export { repackBundle, type RepackOptions, type RepackResult } from './repack.js'
export { insertIntoImage, type InsertOptions, type InsertResult } from './insert.js'
export { appendLayer, type AppendLayerOptions, type AppendLayerResult } from './append-layer.js'
export { runtimeConfig } from './runtime-config.js'
