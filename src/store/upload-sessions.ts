/**
 * The bookkeeping every UploadSessions implementation shares (src/store/blob-store.ts): ids,
 * the in-order rule for chunks (distribution-spec §Pushing a blob in chunks: a chunk must start
 * where the upload ends, else 416), one chunk at a time, and a session ending at commit or abort.
 * Implementations keep the bytes (a temp file, memory) and extend this.
 */
import { randomBytes } from 'node:crypto'
import { LadingError } from '../errors.js'
import type { UploadStatus } from './blob-store.js'

export interface SessionState { size: number; busy: boolean }

export abstract class SessionTable<S extends SessionState> {
  readonly #sessions = new Map<string, S>()

  async status(id: string): Promise<UploadStatus> {
    return { id, size: this.#get(id).size }
  }

  /** Register a new session. */
  protected add(state: S): UploadStatus {
    const id = randomBytes(16).toString('hex')
    this.#sessions.set(id, state)
    return { id, size: state.size }
  }

  /** The session, checked for a chunk at `offset` and marked busy: `busy = false` when done. */
  protected claimAppend(id: string, offset: number): S {
    const s = this.#get(id)
    if (s.busy) throw new LadingError('CONFLICT', `upload ${id}: another chunk is being written`)
    if (offset !== s.size) throw new LadingError('CONFLICT', `upload ${id}: chunk starts at ${offset}, the upload has ${s.size} bytes (chunks must be in order)`)
    s.busy = true
    return s
  }

  /** The session, ended: commit verifies it next, and it is gone whatever the verdict. */
  protected claimCommit(id: string): S {
    const s = this.#get(id)
    if (s.busy) throw new LadingError('CONFLICT', `upload ${id}: a chunk is still being written`)
    this.#sessions.delete(id)
    return s
  }

  /** The session removed (abort); undefined when unknown. */
  protected take(id: string): S | undefined {
    const s = this.#sessions.get(id)
    this.#sessions.delete(id)
    return s
  }

  #get(id: string): S {
    const s = this.#sessions.get(id)
    if (!s) throw new LadingError('NOT_FOUND', `upload ${id}: no such upload session`)
    return s
  }
}
