/**
 * Blobs in memory: for tests and for library users who build or inspect images without a disk.
 * Keeps the contracts of src/store/blob-store.ts like the file system does: bytes are collected
 * through the VerifyingStream and become visible (one Map.set) only once they verified, and every
 * read verifies again, so a store corrupted behind its back (the contract test does this through
 * `corrupt`) errors before a stream ends rather than handing out wrong bytes.
 */
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Digest } from '../../digest/digest.js'
import { VerifyingStream, verifyBytes } from '../../digest/verify.js'
import { LadingError } from '../../errors.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../../io/limits.js'
import type { BlobExpectation, BlobInfo, BlobRef, BlobStat, BlobStore, UploadSessions, UploadStatus } from '../blob-store.js'
import { SessionTable, checkLength, type SessionState } from '../upload-sessions.js'

interface Entry {
  bytes: Buffer
  modifiedMs: number
}

export class MemoryBlobStore implements BlobStore {
  readonly name: string
  readonly uploads: UploadSessions
  readonly #blobs = new Map<Digest, Entry>()

  constructor(name = 'memory') {
    this.name = name
    this.uploads = new MemoryUploads(this)
  }

  async stat(d: Digest): Promise<BlobStat | undefined> {
    const e = this.#blobs.get(d)
    return e && { digest: d, size: e.bytes.length, modifiedMs: e.modifiedMs }
  }

  async put(body: Readable | Uint8Array, expected: BlobExpectation = {}): Promise<BlobInfo> {
    if (expected.digest !== undefined) {
      const existing = this.#blobs.get(expected.digest)
      if (existing && (expected.size === undefined || existing.bytes.length === expected.size)) {
        if (body instanceof Readable) body.destroy()
        existing.modifiedMs = Date.now()
        return { digest: expected.digest, size: existing.bytes.length }
      }
    }
    let bytes: Buffer
    let digest: Digest
    if (body instanceof Readable) {
      const verifier = new VerifyingStream({ ...expected, name: expected.name ?? expected.digest }, undefined, body)
      const chunks: Buffer[] = []
      try {
        await pipeline(
          body,
          verifier,
          new Writable({
            write: (c: Buffer, _e, cb) => {
              chunks.push(c)
              cb()
            },
          }),
        )
      } catch (e) {
        body.destroy()
        throw e
      }
      const result = verifier.result
      if (!result) throw new Error('verifying stream ended without a result')
      bytes = Buffer.concat(chunks)
      digest = result.digest
    } else {
      digest = verifyBytes(body, expected)
      bytes = Buffer.from(body)
    }
    this.commit(digest, bytes)
    return { digest, size: bytes.length }
  }

  async get(desc: BlobRef): Promise<Readable> {
    const bytes = this.#bytes(desc)
    const verifier = new VerifyingStream({ digest: desc.digest, size: desc.size, name: `blob ${desc.digest}` })
    // Chunked so that a consumer sees data before the end, as from a file (and errors before 'end').
    const chunks: Buffer[] = []
    for (let i = 0; i < bytes.length; i += 64 * 1024) chunks.push(bytes.subarray(i, i + 64 * 1024))
    Readable.from(chunks).pipe(verifier)
    return verifier
  }

  async read(desc: BlobRef, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES): Promise<Buffer> {
    const bytes = this.#bytes(desc)
    if (bytes.length > maxBytes) {
      throw new LadingError('SIZE_LIMIT', `blob ${desc.digest}: ${bytes.length} bytes is larger than the limit of ${maxBytes} bytes for a document`)
    }
    verifyBytes(bytes, { digest: desc.digest, size: desc.size, name: `blob ${desc.digest}` })
    return Buffer.from(bytes)
  }

  async delete(d: Digest): Promise<void> {
    this.#blobs.delete(d)
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const [digest, e] of [...this.#blobs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (this.#blobs.has(digest)) yield { digest, size: e.bytes.length }
    }
  }

  async touch(d: Digest): Promise<void> {
    const e = this.#blobs.get(d)
    if (e) e.modifiedMs = Date.now()
  }

  /** Make verified bytes visible (for MemoryUploads; callers verified them). */
  commit(digest: Digest, bytes: Buffer): void {
    const existing = this.#blobs.get(digest)
    if (existing) existing.modifiedMs = Date.now()
    else this.#blobs.set(digest, { bytes, modifiedMs: Date.now() })
  }

  /** Test hook: flip one byte of a stored blob behind the store's back (what a failing disk does). */
  corrupt(d: Digest, at = 0): void {
    const e = this.#blobs.get(d)
    if (!e) throw new LadingError('BLOB_UNKNOWN', `blob ${d} not found in ${this.name}`)
    const copy = Buffer.from(e.bytes)
    copy[at] = (copy[at] ?? 0) ^ 0xff
    e.bytes = copy
  }

  #bytes(desc: BlobRef): Buffer {
    const e = this.#blobs.get(desc.digest)
    if (!e) throw new LadingError('BLOB_UNKNOWN', `blob ${desc.digest} not found in ${this.name}`)
    if (desc.size !== undefined && e.bytes.length !== desc.size) {
      throw new LadingError('SIZE_MISMATCH', `blob ${desc.digest}: size mismatch: expected ${desc.size} bytes, store has ${e.bytes.length}`)
    }
    return e.bytes
  }
}

interface Session extends SessionState {
  chunks: Buffer[]
}

class MemoryUploads extends SessionTable<Session> implements UploadSessions {
  readonly #store: MemoryBlobStore

  constructor(store: MemoryBlobStore) {
    super()
    this.#store = store
  }

  async start(owner?: string): Promise<UploadStatus> {
    return this.add({ chunks: [], size: 0, owner, lastActiveMs: Date.now() })
  }

  async append(id: string, offset: number | undefined, chunk: Readable | Uint8Array, length?: number): Promise<UploadStatus> {
    return this.queues.run(id, async () => {
      const s = this.claimAppend(id, offset)
      // Collected first, so that a chunk failing half-way leaves the session as it was.
      const parts: Buffer[] = []
      let received = 0
      if (chunk instanceof Readable) {
        for await (const p of chunk) {
          parts.push(p as Buffer)
          received += (p as Buffer).length
          checkLength(received, length, false)
        }
      } else {
        parts.push(Buffer.from(chunk))
        received = chunk.length
      }
      checkLength(received, length, true)
      this.get(id) // aborted meanwhile: NOT_FOUND
      s.chunks.push(...parts)
      s.size += received
      s.lastActiveMs = Date.now()
      return this.status(id)
    })
  }

  async commit(id: string, expected: { digest: Digest; size?: number }): Promise<BlobInfo> {
    return this.queues.run(id, async () => {
      const bytes = Buffer.concat(this.claimCommit(id).chunks)
      const digest = verifyBytes(bytes, { ...expected, name: `upload ${id}` })
      this.#store.commit(digest, bytes)
      return { digest, size: bytes.length }
    })
  }

  async abort(id: string): Promise<void> {
    this.take(id)
  }
}
