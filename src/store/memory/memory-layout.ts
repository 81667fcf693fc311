/** A Layout held in memory (nothing touches the disk): for tests and library users. */
import { Layout } from '../layout.js'
import { MemoryBlobStore } from './blob-store.js'
import { MemoryIndexStore, MemoryWriterLeases } from './index-store.js'

export function memoryLayout(name = 'memory'): Layout {
  const index = new MemoryIndexStore(name)
  return new Layout({ name, blobs: new MemoryBlobStore(name), index, leases: new MemoryWriterLeases(index) })
}
