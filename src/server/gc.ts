/**
 * Garbage collection while serving, without read-only mode.
 *
 * One round:
 * 1. Upload sessions idle longer than `uploadTtlMs` are removed (their bytes never became blobs).
 *    With `untaggedGraceMs`, each repository first drops untagged manifests that no tag keeps
 *    (FsRegistryStorage.pruneUntagged), so that step 2 can take their blobs.
 * 2. Each repository is collected by src/store/gc.ts (Layout.gc, under its index lock) with
 *    `minAgeMs = graceMs`: blob links nothing in index.json reaches and not linked, mounted or
 *    uploaded in the last `graceMs` are removed. A manifest PUT checks its blobs under the same
 *    lock (FsRegistryStorage.putManifest), so it either lands before the sweep (and its blobs
 *    are marked) or after it (and finds a removed blob missing: MANIFEST_BLOB_UNKNOWN, never a
 *    manifest pointing at nothing).
 * 3. The content store drops blobs no repository links to any more, older than `graceMs`, and
 *    never one pinned by the server's in-flight tracking: digests of uploads being committed and
 *    of manifests being pushed and the blobs they name. A pin taken while a removal is under
 *    way waits for it (InFlight.pinSettled), so the pinner sees the blob gone, not vanishing.
 */
import type { Digest } from '../digest/digest.js'
import type { FsRegistryStorage } from './storage.js'

/** Digests that requests in flight are about to reference. */
export class InFlight {
  readonly #pins = new Map<string, number>()

  /** Pin `digests` until the returned function is called. */
  pin(digests: Iterable<string>): () => void {
    const list = [...new Set(digests)]
    for (const d of list) this.#pins.set(d, (this.#pins.get(d) ?? 0) + 1)
    let done = false
    return () => {
      if (done) return
      done = true
      for (const d of list) {
        const n = (this.#pins.get(d) ?? 1) - 1
        if (n <= 0) this.#pins.delete(d)
        else this.#pins.set(d, n)
      }
    }
  }

  /** Removals in progress: digest -> settles when the removal is over. */
  readonly #removing = new Map<string, Promise<void>>()

  /**
   * Pin `digests`, then wait until no removal of any of them is in progress. A sweep claims a
   * digest (claimForRemoval) in the same tick as it reads the pins, so either the sweep sees this
   * pin and spares the blob, or its removal started first and this waits for it to finish: the
   * caller then finds the blob absent and writes it anew, instead of reporting success on a blob
   * that vanishes a moment later (an upload lost to gc).
   */
  async pinSettled(digests: Iterable<string>): Promise<() => void> {
    const list = [...new Set(digests)]
    const unpin = this.pin(list)
    for (const d of list) await this.#removing.get(d)
    return unpin
  }

  /**
   * Claim `digest` for removal unless it is pinned (checked and claimed synchronously, so no pin
   * can slip in between). Returns the release to call when the removal is over, or undefined when
   * the digest is pinned and must be kept.
   */
  claimForRemoval(digest: string): (() => void) | undefined {
    if (this.#pins.has(digest) || this.#removing.has(digest)) return undefined
    let release!: () => void
    this.#removing.set(
      digest,
      new Promise<void>((resolve) => {
        release = resolve
      }),
    )
    return () => {
      this.#removing.delete(digest)
      release()
    }
  }
}

export interface GcPolicy {
  /** Spare unreferenced blobs younger than this (a client may be about to push their manifest). */
  graceMs: number
  /** Remove upload sessions idle this long. */
  uploadTtlMs: number
  /** Drop untagged manifests no tag keeps, pushed longer ago than this (undefined: keep them). */
  untaggedGraceMs?: number | undefined
}

export interface GcRound {
  repositories: number
  blobsRemoved: Array<{ repository: string; digest: Digest; size: number }>
  contentRemoved: Array<{ digest: Digest; size: number }>
  uploadsRemoved: number
  /** Repositories whose collection failed (an unreadable manifest aborts gc for that layout). */
  errors: Array<{ repository: string; message: string }>
  untaggedRemoved: Array<{ repository: string; digest: Digest }>
}

export async function collectOnline(storage: FsRegistryStorage, inFlight: InFlight, policy: GcPolicy): Promise<GcRound> {
  const uploadsRemoved = (await storage.uploads.sweep(policy.uploadTtlMs)).sessions
  const repos = await storage.listRepositories()
  const blobsRemoved: GcRound['blobsRemoved'] = []
  const errors: GcRound['errors'] = []
  const untaggedRemoved: GcRound['untaggedRemoved'] = []
  for (const repository of repos) {
    try {
      const layout = await storage.layout(repository)
      if (!layout) continue
      if (policy.untaggedGraceMs !== undefined) {
        for (const digest of await storage.pruneUntagged(repository, policy.untaggedGraceMs)) untaggedRemoved.push({ repository, digest })
      }
      const r = await layout.gc({ minAgeMs: policy.graceMs })
      for (const b of r.removed) blobsRemoved.push({ repository, ...b })
    } catch (e) {
      errors.push({ repository, message: e instanceof Error ? e.message : String(e) })
    }
  }
  const contentRemoved = await storage.sweepContent(policy.graceMs, (d) => inFlight.claimForRemoval(d))
  return { repositories: repos.length, blobsRemoved, contentRemoved, uploadsRemoved, errors, untaggedRemoved }
}
