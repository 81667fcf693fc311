/**
 * Garbage collection of an OCI layout: mark from index.json, sweep the rest.
 *
 * Mark: every descriptor in index.json, and through indexes (OCI index, Docker manifest list)
 * and manifests their children: config, layers, subject (image-spec manifest.md §subject,
 * image-index.md). Then referrers: an otherwise unreachable manifest whose `subject` is a
 * marked blob is kept with everything it references (image-spec manifest.md §subject: the
 * referrers relationship is only discoverable from the referrer, so we look at every small
 * unmarked blob). Repeat until nothing new is marked (a referrer of a referrer).
 *
 * Safety: a reachable manifest or index that is missing or unparseable aborts gc, since its
 * children cannot be known and would otherwise be deleted. gc runs under the index.json lock,
 * so no tag can be added mid-mark. Temp files are removed only when their writer (the pid in
 * the name, src/io/fs.ts) is dead, or the file has not been written to for a day (pid reuse);
 * a blob that another process is writing right now is therefore never removed.
 *
 * Writers in progress (src/store/writer-lease.ts states the whole rule): a blob another
 * process has stored but not tagged *yet* is unreferenced. gc keeps every unreferenced blob
 * modified since the start of the oldest live writer lease (Lading's writers all take one), and
 * any younger than `minAgeMs` (the CLI's --keep-recent, for other tools' writers). Writers check
 * under the index lock that their image is complete before they tag it, so a blob removed anyway
 * (a gc by another tool) ends their write with an error, never with a tag naming missing blobs.
 *
 * A registry server runs gc online on the same rule: each upload session holds a lease
 * (acquireWriterLease) until its manifest is put, and gc is called with the server's grace.
 */
import type { Digest } from '../digest/digest.js'
import { LadingError } from '../errors.js'
import { MAX_INDEX_DEPTH, checkIndexDepth } from '../io/limits.js'
import { isIndexMediaType, isManifestMediaType } from '../spec/media-types.js'
import { parseIndex, parseManifest } from '../spec/parse.js'
import type { Descriptor } from '../spec/types.js'
import type { BlobReader } from './blob-store.js'
import type { Stores } from './index-store.js'
import { scanReferrers } from './referrers.js'
import { LEASE_CLOCK_SLACK_MS } from './writer-lease.js'

export interface GcOptions {
  /**
   * Grace period: keep unreferenced blobs modified less than this long ago, for writers that
   * take no lease (other tools). Default 0: Lading's writers are protected by their leases
   * (src/store/writer-lease.ts) whatever this says.
   */
  minAgeMs?: number
}
export interface GcResult {
  removed: Array<{ digest: Digest; size: number }>
  tempFilesRemoved: number
  tempBytesRemoved: number
}

/** Mark everything reachable from index.json (including referrers). Exposed for tests and validate. */
export async function markReachable(store: Pick<Stores, 'blobs' | 'index'>): Promise<Set<string>> {
  const marked = new Set<string>()
  const blobs = store.blobs
  const index = await store.index.read()
  for (const d of index.manifests) await walk(blobs, d, marked, true, 0)
  if (index.subject) await walk(blobs, index.subject, marked, false, 0)

  // Referrers: unmarked documents with a subject; kept once their subject is marked.
  const candidates = await scanReferrers(blobs, marked)
  for (let changed = true; changed;) {
    changed = false
    for (const c of candidates) {
      if (marked.has(c.descriptor.digest) || !marked.has(c.subject)) continue
      await walk(blobs, c.descriptor, marked, false, 0)
      changed = true
    }
  }
  return marked
}

/** Mark and sweep `store`, holding its index lock. */
export async function collectGarbage(store: Stores, opts: GcOptions = {}): Promise<GcResult> {
  const minAgeMs = opts.minAgeMs ?? 0
  return store.index.withLock(async () => {
    const marked = await markReachable(store)
    const removed: Array<{ digest: Digest; size: number }> = []
    const now = Date.now()
    // Leases are read under the index lock, which writers take to start one: none starts mid-sweep.
    const leaseStart = await store.leases.oldestLive({ removeDead: true })
    const keepFrom = Math.min(minAgeMs > 0 ? now - minAgeMs : Infinity, leaseStart !== undefined ? leaseStart - LEASE_CLOCK_SLACK_MS : Infinity)
    for await (const blob of store.blobs.list()) {
      if (marked.has(blob.digest)) continue
      if (keepFrom !== Infinity) {
        const st = await store.blobs.stat(blob.digest).catch(() => undefined)
        if (!st || st.modifiedMs >= keepFrom) continue
      }
      await store.blobs.delete(blob.digest)
      removed.push(blob)
    }
    const swept = await store.blobs.sweep?.()
    return { removed, tempFilesRemoved: swept?.filesRemoved ?? 0, tempBytesRemoved: swept?.bytesRemoved ?? 0 }
  })
}

async function walk(blobs: BlobReader, desc: Descriptor, marked: Set<string>, strict: boolean, depth: number): Promise<void> {
  // Each digest once: the mark is linear in the documents stored, whatever their entries repeat.
  if (marked.has(desc.digest)) return
  marked.add(desc.digest)
  const mt = desc.mediaType
  if (!isIndexMediaType(mt) && !isManifestMediaType(mt)) return
  const source = `blob ${desc.digest}`
  // Too deep aborts gc (nothing removed) rather than leaving the children unmarked.
  if (strict) checkIndexDepth(depth, `gc aborted, nothing removed: ${source}`)
  else if (depth > MAX_INDEX_DEPTH) return
  let children: readonly Descriptor[]
  let subject: Descriptor | undefined
  try {
    const bytes = await blobs.read(desc)
    if (isIndexMediaType(mt)) {
      const index = parseIndex(bytes, source, mt)
      children = index.manifests
      subject = index.subject
    } else {
      const m = parseManifest(bytes, source, mt)
      children = [m.config, ...m.layers]
      subject = m.subject
    }
  } catch (e) {
    if (!strict) return
    const why = e instanceof Error ? e.message : String(e)
    const code = e instanceof LadingError ? e.code : 'INVALID_LAYOUT'
    throw new LadingError(code, `gc aborted, nothing removed: reachable ${mt} ${desc.digest} cannot be read: ${why}`, { cause: e })
  }
  for (const c of children) await walk(blobs, c, marked, strict, depth + 1)
  // A subject need not be in this layout (image-spec manifest.md §subject); keep it if it is,
  // but do not abort over it.
  if (subject) await walk(blobs, subject, marked, false, depth + 1)
}
