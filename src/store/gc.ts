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
 * the name, src/io/fs.ts) is dead, or the file has not been written to for a day (pid reuse):
 * src/io/cleanup.ts isAbandonedTemp, the rule every sweep of leftovers uses; a blob that
 * another process is writing right now is therefore never removed.
 *
 * Not covered: a blob put by another process that has not tagged it *yet* is unreferenced and
 * will be removed unless `minAgeMs` keeps recent blobs (the CLI's --keep-recent).
 */
import { promises as fsp } from 'node:fs'
import type { Digest } from '../digest/digest.js'
import { LadingError, isErrno } from '../errors.js'
import { isAbandonedTemp } from '../io/cleanup.js'
import { tempNamePid } from '../io/fs.js'
import { isIndexMediaType, isManifestMediaType } from '../spec/media-types.js'
import { parseIndex, parseManifest } from '../spec/parse.js'
import type { Descriptor } from '../spec/types.js'
import type { GcOptions, GcResult, Layout } from './layout.js'
import { scanReferrers } from './referrers.js'

/** Mark everything reachable from index.json (including referrers). Exposed for tests and validate. */
export async function markReachable(layout: Layout): Promise<Set<string>> {
  const marked = new Set<string>()
  const index = await layout.readIndex()
  for (const d of index.manifests) await walk(layout, d, marked, true, 0)
  if (index.subject) await walk(layout, index.subject, marked, false, 0)

  // Referrers: unmarked documents with a subject; kept once their subject is marked.
  const candidates = await scanReferrers(layout, marked)
  for (let changed = true; changed;) {
    changed = false
    for (const c of candidates) {
      if (marked.has(c.descriptor.digest) || !marked.has(c.subject)) continue
      await walk(layout, c.descriptor, marked, false, 0)
      changed = true
    }
  }
  return marked
}

export async function collectGarbage(layout: Layout, opts: GcOptions = {}): Promise<GcResult> {
  const minAgeMs = opts.minAgeMs ?? 0
  return layout.withIndexLock(async () => {
    const marked = await markReachable(layout)
    const removed: Array<{ digest: Digest; size: number }> = []
    const now = Date.now()
    for await (const blob of layout.listBlobs()) {
      if (marked.has(blob.digest)) continue
      if (minAgeMs > 0) {
        const st = await fsp.lstat(layout.blobPath(blob.digest)).catch(() => undefined)
        if (!st || now - st.mtimeMs < minAgeMs) continue
      }
      await layout.deleteBlob(blob.digest)
      removed.push(blob)
    }

    let tempFilesRemoved = 0
    let tempBytesRemoved = 0
    for (const t of await layout.listTempFiles()) {
      if (!isAbandonedTemp(tempNamePid(t.name), now - t.mtimeMs)) continue
      try {
        await fsp.rm(t.path)
        tempFilesRemoved++
        tempBytesRemoved += t.size
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e
      }
    }
    return { removed, tempFilesRemoved, tempBytesRemoved }
  })
}

const MAX_DEPTH = 16

async function walk(layout: Layout, desc: Descriptor, marked: Set<string>, strict: boolean, depth: number): Promise<void> {
  if (marked.has(desc.digest)) return
  marked.add(desc.digest)
  const mt = desc.mediaType
  if (!isIndexMediaType(mt) && !isManifestMediaType(mt)) return
  if (depth > MAX_DEPTH) throw new LadingError('INVALID_INDEX', `gc: indexes nested deeper than ${MAX_DEPTH} at blob ${desc.digest}`)
  const source = `blob ${desc.digest}`
  let children: Descriptor[]
  let subject: Descriptor | undefined
  try {
    const bytes = await layout.readBlob(desc)
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
  for (const c of children) await walk(layout, c, marked, strict, depth + 1)
  // A subject need not be in this layout (image-spec manifest.md §subject); keep it if it is,
  // but do not abort over it.
  if (subject) await walk(layout, subject, marked, false, depth + 1)
}
