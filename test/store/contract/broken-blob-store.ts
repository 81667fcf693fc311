/**
 * A deliberately broken blob store, for showing that the contract suite catches the bug it is
 * about: `put` makes the bytes visible under the digest it was promised *before* verifying them
 * (the classic write-then-check store). Run only by test/store/contract-catches.test.ts, in a
 * child process with LADING_BROKEN_CONTRACT=1; without it this file registers nothing, so the
 * whole-suite run (which imports every file under build/test/) stays green.
 */
import { Readable } from 'node:stream'
import { digestOf, type Digest } from '../../../src/digest/digest.js'
import type { BlobExpectation, BlobInfo } from '../../../src/store/blob-store.js'
import { MemoryBlobStore } from '../../../src/store/memory/blob-store.js'
import { blobStoreContract } from './blob-store.js'

export class VisibleBeforeVerifiedStore extends MemoryBlobStore {
  override async put(body: Readable | Uint8Array, expected: BlobExpectation = {}): Promise<BlobInfo> {
    // Otherwise correct (an existing blob is kept unread), so that only the one bug shows.
    if (expected.digest !== undefined && (await this.stat(expected.digest))) return super.put(body, expected)
    const bytes = body instanceof Readable ? Buffer.concat((await body.toArray()) as Buffer[]) : Buffer.from(body)
    // The bug: visible under the promised name first; checked (and maybe refused) afterwards.
    this.commit(expected.digest ?? digestOf(bytes), bytes)
    return super.put(bytes, expected)
  }
}

if (process.env.LADING_BROKEN_CONTRACT === '1') {
  blobStoreContract('broken', async () => {
    const store = new VisibleBeforeVerifiedStore('broken')
    return {
      store,
      async corrupt(d: Digest) {
        store.corrupt(d, 1000)
      },
      async cleanup() {},
    }
  })
}
