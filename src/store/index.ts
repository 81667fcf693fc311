/**
 * `lading/store`: where images live. A Layout (an OCI image layout on disk, or in memory) is a
 * blob store and an index store behind interfaces; resolving names an image in it by a tag or a
 * digest (ImageSelector); gc, referrers and validation are clients of the store.
 */
export { Layout } from './layout.js'
export type { BlobStore, BlobReader, BlobRef, BlobInfo, BlobStat, BlobExpectation, UploadSessions, UploadStatus } from './blob-store.js'
export type { IndexStore, WriterLeases, Stores } from './index-store.js'
export { FsBlobStore } from './fs/blob-store.js'
export { FsIndexStore } from './fs/index-store.js'
export { MemoryBlobStore } from './memory/blob-store.js'
export { MemoryIndexStore, MemoryWriterLeases } from './memory/index-store.js'
export { memoryLayout } from './memory/memory-layout.js'
export { resolveImage, descriptorForDigest, type ResolvedImage, type ImageSelector, type PlatformChoice } from './resolve.js'
export { writeImage } from './image.js'
export { newImage, EMPTY_TAR } from './new-image.js'
export { collectGarbage, markReachable, type GcOptions, type GcResult } from './gc.js'
export { listReferrers } from './referrers.js'
export { validateLayout, validateDocument } from './validate-layout.js'
// gc and writers: the rule a writer (or a registry server) follows so that gc keeps its blobs.
export { acquireWriterLease, withWriterLease, type WriterLease } from './writer-lease.js'
export { assertComplete } from './closure.js'
