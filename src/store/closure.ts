/**
 * Is everything a descriptor reaches present in the store? Writers ask this under the index
 * lock right before they write a tag (README §gc, src/store/writer-lease.ts), so that a tag
 * never names an image whose blobs a concurrent gc (or anything else) removed.
 *
 * Reached: through indexes their entries, through manifests their config and layers
 * (image-spec image-index.md, manifest.md). A `subject` need not be in the layout (manifest.md
 * §subject) and is not required. Non-distributable layers with `urls` may be absent (layer.md).
 * Each digest is read once (a hostile index repeating its children costs nothing), depth and
 * visits are capped (src/io/limits.ts). Layers are only stat'ed; documents are read, and a
 * document that does not parse as its descriptor says is not descended (only presence is judged).
 */
import { LadingError, isLadingError } from '../errors.js'
import { VisitBudget, checkIndexDepth } from '../io/limits.js'
import { isIndexMediaType, isManifestMediaType } from '../spec/media-types.js'
import { parseIndex, parseManifest } from '../spec/parse.js'
import type { Descriptor } from '../spec/types.js'
import type { Stores } from './index-store.js'

/** BLOB_UNKNOWN naming the first missing blob (and `what` is written for) unless `desc` is complete. */
export async function assertComplete(store: Pick<Stores, 'blobs' | 'name'>, desc: Descriptor, what: string): Promise<void> {
  const seen = new Set<string>()
  const budget = new VisitBudget(what)
  const visit = async (d: Descriptor, depth: number): Promise<void> => {
    budget.spend()
    const key = `${d.digest}/${d.size}`
    if (seen.has(key)) return
    seen.add(key)
    const size = (await store.blobs.stat(d.digest))?.size
    if (size === undefined) {
      if (d.urls?.length) return
      throw new LadingError(
        'BLOB_UNKNOWN',
        `${what}: blob ${d.digest} (${d.mediaType}) is not in layout ${store.name}; was it removed by a gc while this ran? Nothing was tagged`,
      )
    }
    if (size !== d.size)
      throw new LadingError('SIZE_MISMATCH', `${what}: blob ${d.digest}: descriptor says ${d.size} bytes, blob has ${size}; nothing was tagged`)
    const source = `blob ${d.digest}`
    const isIndex = isIndexMediaType(d.mediaType)
    if (!isIndex && !isManifestMediaType(d.mediaType)) return
    checkIndexDepth(depth, source)
    let children: readonly Descriptor[]
    try {
      const bytes = await store.blobs.read(d)
      if (isIndex) {
        children = parseIndex(bytes, source, d.mediaType).manifests
      } else {
        const m = parseManifest(bytes, source, d.mediaType)
        children = [m.config, ...m.layers]
      }
    } catch (e) {
      // Present but not what its descriptor says (or corrupt): what it names cannot be known.
      // Tagging it is allowed (validate reports it); only vanished blobs are refused here.
      if (isLadingError(e, 'BLOB_UNKNOWN')) throw e
      return
    }
    for (const c of children) await visit(c, depth + 1)
  }
  await visit(desc, 0)
}
