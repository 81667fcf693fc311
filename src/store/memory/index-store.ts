/**
 * index.json and writer leases in memory (src/store/index-store.ts's contracts). The lock is a
 * promise chain: one update at a time in this process, which is all a memory store has. The
 * index is kept as the JSON it would be written as, so a caller holding a returned index cannot
 * change the stored one, and an index that would not parse is never stored.
 */
import { LadingError } from '../../errors.js'
import { MediaType } from '../../spec/media-types.js'
import { parseIndex } from '../../spec/parse.js'
import type { Index } from '../../spec/types.js'
import type { IndexStore, WriterLease, WriterLeases } from '../index-store.js'

export class MemoryIndexStore implements IndexStore {
  readonly name: string
  #json: string = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] } satisfies Index)
  #tail: Promise<unknown> = Promise.resolve()

  constructor(name = 'memory') {
    this.name = name
  }

  async read(): Promise<Index> {
    return parseIndex(Buffer.from(this.#json), `${this.name} index`)
  }

  async update(fn: (index: Index) => Index | Promise<Index>, opts: { timeoutMs?: number } = {}): Promise<Index> {
    return this.withLock(async () => {
      const next = await fn(await this.read())
      const json = JSON.stringify(next)
      // Never store an index we would refuse to read.
      parseIndex(Buffer.from(json), `${this.name} index (being written)`)
      this.#json = json
      return next
    }, opts)
  }

  async withLock<T>(fn: () => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
    const prev = this.#tail
    let release!: () => void
    const mine = new Promise<void>((resolve) => {
      release = resolve
    })
    this.#tail = prev.then(() => mine)
    let timer: NodeJS.Timeout | undefined
    try {
      await (opts.timeoutMs === undefined
        ? prev
        : Promise.race([
            prev,
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new LadingError('LOCKED', `${this.name} index: still locked after ${opts.timeoutMs} ms`)), opts.timeoutMs)
            }),
          ]))
    } catch (e) {
      // Our turn is given up: whoever queued after us waits for the holder only.
      prev.then(release, release)
      throw e
    } finally {
      clearTimeout(timer)
    }
    try {
      return await fn()
    } finally {
      release()
    }
  }
}

export class MemoryWriterLeases implements WriterLeases {
  readonly #index: IndexStore
  readonly #live = new Map<string, number>()
  #next = 0

  constructor(index: IndexStore) {
    this.#index = index
  }

  async acquire(): Promise<WriterLease> {
    const name = `memory-lease-${++this.#next}`
    const started = Date.now()
    // Under the index lock, as on disk: a lease never starts while a gc sweeps.
    await this.#index.withLock(async () => {
      this.#live.set(name, started)
    })
    const live = this.#live
    return {
      path: name,
      started,
      async release() {
        live.delete(name)
      },
    }
  }

  async oldestLive(): Promise<number | undefined> {
    let oldest: number | undefined
    for (const started of this.#live.values()) if (oldest === undefined || started < oldest) oldest = started
    return oldest
  }
}
