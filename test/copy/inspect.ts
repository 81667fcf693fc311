/** Reading an image back through any transport, for comparing what copies produced. */
import { readAllLimited } from '../../src/io/limits.js'
import { parseConfig, parseManifest } from '../../src/spec/parse.js'
import { isIndexMediaType } from '../../src/spec/media-types.js'
import { openSource, type TransportOptions } from '../../src/transport/open.js'
import { parseReference } from '../../src/transport/reference.js'
import type { Digest } from '../../src/digest/digest.js'

export interface Seen {
  manifestDigest: Digest
  mediaType: string
  configDigest: Digest
  configBytes: string
  diffIds: readonly Digest[]
  layers: Array<{ digest: Digest; mediaType: string; size: number }>
}

/** The image a reference names (an index must not be at the top: pass a platform-specific ref). */
export async function seeImage(ref: string, opts: TransportOptions = {}): Promise<Seen> {
  const src = await openSource(parseReference(ref), opts)
  try {
    const raw = await src.getManifest()
    if (isIndexMediaType(raw.mediaType)) throw new Error(`${ref} is an index`)
    const m = parseManifest(raw.bytes, ref)
    // Every layer must stream and verify, not only the documents.
    for (const l of m.layers)
      for await (const _ of await src.getBlob(l)) {
        /* drain */
      }
    const configBytes = await readAllLimited(await src.getBlob(m.config), 1 << 22, 'config')
    return {
      manifestDigest: raw.digest,
      mediaType: raw.mediaType,
      configDigest: m.config.digest,
      configBytes: configBytes.toString('utf8'),
      diffIds: parseConfig(configBytes, 'config').rootfs.diff_ids,
      layers: m.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size })),
    }
  } finally {
    await src.close()
  }
}
