/**
 * The rules every UploadSessions implementation shares (src/store/blob-store.ts): session ids
 * and their grammar, the in-order rule for chunks (distribution-spec §Pushing a blob in chunks: a
 * chunk must start where the upload ends, else 416), a chunk's declared length, and one
 * operation at a time per session. `SessionTable` is the in-memory bookkeeping (src/store/memory/);
 * the file system's sessions keep their state on disk instead (src/store/fs/uploads.ts).
 */
import { randomUUID } from 'node:crypto'
import { LadingError } from '../errors.js'
import type { UploadStatus } from './blob-store.js'

const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** A random UUID: unguessable, and safe as a path component once `isSessionId` checked it. */
export function newSessionId(): string {
  return randomUUID()
}

/** Ids come from clients (URLs): checked against the grammar before they touch a path or a table. */
export function isSessionId(id: string): boolean {
  return ID_RE.test(id)
}

export function unknownSession(id: string, cause?: unknown): LadingError {
  return new LadingError('NOT_FOUND', `upload ${id.slice(0, 64)}: no such upload session`, cause === undefined ? undefined : { cause })
}

/** CONFLICT unless a chunk at `offset` (undefined: at the end) continues an upload of `size` bytes. */
export function checkOffset(id: string, offset: number | undefined, size: number): void {
  if (offset !== undefined && offset !== size) {
    throw new LadingError('CONFLICT', `upload ${id}: chunk starts at ${offset}, the upload has ${size} bytes (chunks must be in order)`)
  }
}

/** SIZE_MISMATCH when `received` bytes exceed (or, at the end, differ from) the declared `length`. */
export function checkLength(received: number, length: number | undefined, ended: boolean): void {
  if (length === undefined) return
  if (received > length) throw new LadingError('SIZE_MISMATCH', `chunk is longer than its declared length ${length}`)
  if (ended && received !== length) throw new LadingError('SIZE_MISMATCH', `chunk has ${received} bytes, but its declared length is ${length}`)
}

/** Run operations on one key one after another (a per-session queue), whatever each one's outcome. */
export class SerialQueues {
  readonly #tails = new Map<string, Promise<unknown>>()

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    const tail = next.catch(() => {})
    this.#tails.set(key, tail)
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    return next
  }
}

export interface SessionState {
  size: number
  owner: string | undefined
  lastActiveMs: number
}

/** In-memory sessions: nothing survives the object (`durable` false). */
export abstract class SessionTable<S extends SessionState> {
  readonly durable = false
  readonly #sessions = new Map<string, S>()
  protected readonly queues = new SerialQueues()

  async status(id: string): Promise<UploadStatus> {
    return this.#view(id, this.get(id))
  }

  async list(): Promise<UploadStatus[]> {
    return [...this.#sessions].map(([id, s]) => this.#view(id, s))
  }

  async sweep(maxIdleMs: number, now = Date.now()): Promise<{ sessions: number; bytes: number }> {
    const r = { sessions: 0, bytes: 0 }
    for (const [id, s] of [...this.#sessions]) {
      if (now - s.lastActiveMs < maxIdleMs) continue
      this.#sessions.delete(id)
      r.sessions++
      r.bytes += s.size
    }
    return r
  }

  /** Register a new session. */
  protected add(state: S): UploadStatus {
    const id = newSessionId()
    this.#sessions.set(id, state)
    return this.#view(id, state)
  }

  /** The session, checked for a chunk at `offset`; call inside `queues.run(id, …)`. */
  protected claimAppend(id: string, offset: number | undefined): S {
    const s = this.get(id)
    checkOffset(id, offset, s.size)
    return s
  }

  /** The session, ended: commit verifies it next, and it is gone whatever the verdict. */
  protected claimCommit(id: string): S {
    const s = this.get(id)
    this.#sessions.delete(id)
    return s
  }

  /** The session removed (abort); undefined when unknown. */
  protected take(id: string): S | undefined {
    const s = this.#sessions.get(id)
    this.#sessions.delete(id)
    return s
  }

  protected get(id: string): S {
    const s = this.#sessions.get(id)
    if (!s) throw unknownSession(id)
    return s
  }

  #view(id: string, s: S): UploadStatus {
    return { id, size: s.size, owner: s.owner, lastActiveMs: s.lastActiveMs }
  }
}
