/**
 * Lading's public library API: everything the CLI does, for Node programs. Exports are
 * deliberate: the building blocks a program needs (digests, the spec model, the layout store,
 * layers, bundles, transports, the copy engine), not every internal helper.
 */
export { LadingError, isLadingError, type ErrorCode } from './errors.js'

// Digests and verification (image-spec descriptor.md §Digests)
export { parseDigest, isDigest, digestOf, digestAlgorithm, digestHex, shortDigest, type Digest, type Algorithm } from './digest/digest.js'
export { VerifyingStream, verifyBytes, type Expected } from './digest/verify.js'

// Compression of layers
export { detectCompression, decompress, compress, type Compression } from './io/compression.js'

// The spec model: types, media types, strict parsers, validators, platforms, conversion
export * from './spec/types.js'
export { MediaType, Annotation, layerInfo, layerMediaType, isIndexMediaType, isManifestMediaType, isConfigMediaType, isLayerMediaType } from './spec/media-types.js'
export { parseJson, parseDescriptor, parseManifest, parseIndex, parseConfig, parseLayoutFile, manifestMediaType } from './spec/parse.js'
export { checkManifest, checkIndex, checkConfig, checkImage, checkDescriptor, formatProblem, type Problem } from './spec/validate.js'
export { hostPlatform, parsePlatform, formatPlatform, platformMatches } from './spec/platform.js'
export { isValidTag, assertValidTag } from './spec/ref-name.js'
export { convertManifest, convertIndex, type ManifestFormat } from './spec/convert.js'
export { editConfig, newImageConfig, type ConfigEdit } from './spec/config-edit.js'
export { statImage, summarizeImage, type ImageStat, type ImageSummary, type SummaryExtras } from './spec/image-stat.js'

// The OCI image layout on disk
export { Layout } from './store/layout.js'
// The store behind interfaces: a blob store and an index store; file system and memory implementations.
export type { BlobStore, BlobReader, BlobRef, BlobInfo, BlobStat, BlobExpectation, UploadSessions, UploadStatus } from './store/blob-store.js'
export type { IndexStore, WriterLeases, Stores } from './store/index-store.js'
export { FsBlobStore } from './store/fs/blob-store.js'
export { FsIndexStore } from './store/fs/index-store.js'
export { MemoryBlobStore } from './store/memory/blob-store.js'
export { MemoryIndexStore, MemoryWriterLeases } from './store/memory/index-store.js'
export { memoryLayout } from './store/memory/memory-layout.js'
export { collectGarbage, markReachable, type GcOptions, type GcResult } from './store/gc.js'
export { listReferrers } from './store/referrers.js'
export { resolveImage, descriptorForDigest, type ResolvedImage } from './store/resolve.js'
export { withLock } from './io/lock.js'
export { writeImage } from './store/image.js'
export { newImage, EMPTY_TAR } from './store/new-image.js'
export { validateLayout, validateDocument } from './store/validate-layout.js'
// gc and writers: the rule a writer (or a registry server) follows so that gc keeps its blobs.
export { acquireWriterLease, withWriterLease, type WriterLease } from './store/writer-lease.js'
export { assertComplete } from './store/closure.js'
export { MAX_INDEX_DEPTH, checkIndexDepth } from './io/limits.js'

// Layers: read, apply, diff, write
export { readTar, type TarEntry as TarReadEntry } from './layer/tar-reader.js'
export { applyLayer, type ApplyOptions, type ApplyStats } from './layer/apply.js'
export { parseIdMap, type IdMapping } from './layer/id-map.js'
export { takeSnapshot, saveSnapshot, loadSnapshot, type Snapshot } from './layer/snapshot.js'
export { diffLayer, type Change } from './layer/diff.js'
export { tarDirectory } from './layer/tar-directory.js'
export { writeTar } from './layer/tar-writer.js'

// Runtime bundles (image-spec conversion.md)
export { unpackBundle, unpackRootfs } from './bundle/unpack.js'
export { repackBundle } from './bundle/repack.js'
export { insertIntoImage } from './bundle/insert.js'
export { runtimeConfig } from './bundle/runtime-config.js'

// Transports and the copy engine
export type { ImageReference, ImageSource, ImageDestination, DestinationCapabilities, Transport, TransportOptions } from './transport/types.js'
export { parseReference, formatReference, displayReference } from './transport/reference.js'
export { openSource, openDestination, TRANSPORTS } from './transport/open.js'
export { copyImage, type CopyOptions, type CopyResult } from './copy/copy.js'
export type { CopyEvent } from './copy/events.js'
export { RegistryClient, type RegistryOptions } from './transport/registry/index.js'

// The local image store and containers run with runc (lading run)
export { LocalStore, defaultStoreDir } from './run/store.js'
export { parseImageName } from './run/image-name.js'
export { pullImage, pushImage } from './run/images.js'
export { ensureLayers } from './run/layers.js'
export { prepareContainer, finishContainer, type RunRequest } from './run/run.js'
export type { RunOverrides } from './run/container-spec.js'

// Building images from Dockerfiles (RUN through runc)
export { build, exportImage, defaultCacheDir, type BuildOptions, type BuildResult, type BuildEvent } from './build/builder.js'
export { parseDockerfile, type Dockerfile, type Instruction } from './build/dockerfile/parse.js'
