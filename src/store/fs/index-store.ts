/**
 * index.json of an OCI layout on disk (image-layout.md §index.json). Changed only by
 * read-modify-write under a cross-process lock (src/io/lock.ts) followed by an atomic rewrite,
 * so concurrent taggers, in this process or others, never lose updates.
 */
import path from 'node:path'
import { LadingError, isErrno, quoteName } from '../../errors.js'
import { atomicWriteFile } from '../../io/fs.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../../io/limits.js'
import { withLock } from '../../io/lock.js'
import { MediaType } from '../../spec/media-types.js'
import { parseIndex } from '../../spec/parse.js'
import type { Index } from '../../spec/types.js'
import type { IndexStore } from '../index-store.js'
import { INDEX_FILE, INDEX_LOCK_FILE, readRegularFile } from './layout-files.js'

export class FsIndexStore implements IndexStore {
  readonly dir: string

  constructor(dir: string) {
    this.dir = dir
  }

  /** Parsed strictly (image-layout.md §index.json: it MUST be an image index). */
  async read(): Promise<Index> {
    const file = path.join(this.dir, INDEX_FILE)
    const source = `${this.dir}/${INDEX_FILE}`
    let bytes: Buffer
    try {
      bytes = await readRegularFile(file, DEFAULT_MAX_DOCUMENT_BYTES, source)
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new LadingError('INVALID_LAYOUT', `${source}: missing (an OCI layout must have ${INDEX_FILE})`, { cause: e })
      throw e
    }
    const index = parseIndex(bytes, source)
    if (index.mediaType !== undefined && index.mediaType !== MediaType.OciIndex) {
      throw new LadingError('INVALID_INDEX', `${source}: /mediaType: ${quoteName(index.mediaType)} is not ${MediaType.OciIndex}`)
    }
    return index
  }

  async update(fn: (index: Index) => Index | Promise<Index>, opts: { timeoutMs?: number } = {}): Promise<Index> {
    return this.withLock(async () => {
      const next = await fn(await this.read())
      const bytes = Buffer.from(JSON.stringify(next))
      // Never write an index.json we would refuse to read.
      parseIndex(bytes, `${this.dir}/${INDEX_FILE} (being written)`)
      await atomicWriteFile(path.join(this.dir, INDEX_FILE), bytes)
      return next
    }, opts)
  }

  async withLock<T>(fn: () => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
    return withLock(path.join(this.dir, INDEX_LOCK_FILE), fn, opts)
  }
}
