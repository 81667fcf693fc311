/**
 * Images in and out of the local store through the one copy engine (src/copy): `pull` copies any
 * transport reference into the store's layout, tagged with its store name (image-name.ts);
 * `push` copies a stored image to any transport reference.
 */
import type { CopyResult, ProgressCallback } from '../copy/copy.js'
import { LadingError } from '../errors.js'
import type { TransportOptions } from '../transport/open.js'
import { parseReference } from '../transport/reference.js'
import type { ImageReference } from '../transport/types.js'
import { parseImageName, type ImageName } from './image-name.js'
import type { LocalStore, StoredImage } from './store.js'

export interface PullResult {
  name: string
  copy: CopyResult
}

/** Copy the image `input` names into the store, under its store name. */
export async function pullImage(
  store: LocalStore,
  input: string | ImageName,
  opts: TransportOptions & { onProgress?: ProgressCallback } = {},
): Promise<PullResult> {
  const n = typeof input === 'string' ? parseImageName(input) : input
  const { onProgress, ...transport } = opts
  // Loaded when used: `lading run` of a stored image never needs the copy engine.
  const [{ copyImage }, { openDestination, openSource }] = await Promise.all([import('../copy/copy.js'), import('../transport/open.js')])
  const src = await openSource(n.source, transport)
  try {
    const dest = await openDestination({ transport: 'oci', dir: store.imagesDir, tag: n.storeName }, transport)
    try {
      const copy = await copyImage(src, dest, onProgress ? { onProgress } : {})
      return { name: n.storeName, copy }
    } finally {
      await dest.close()
    }
  } finally {
    await src.close()
  }
}

/** A destination as the user typed it: a transport reference, or a registry name (docker://). */
export function pushDestination(dest: string): ImageReference {
  return /^(?:oci|oci-archive|docker-archive|dir):|^docker:\/\//.test(dest) ? parseReference(dest) : parseReference(`docker://${dest}`)
}

/** Copy a stored image to `dest`. */
export async function pushImage(
  store: LocalStore,
  image: StoredImage,
  dest: string,
  opts: TransportOptions & { onProgress?: ProgressCallback } = {},
): Promise<CopyResult> {
  const { onProgress, ...transport } = opts
  const destRef = pushDestination(dest)
  const [{ copyImage }, { openDestination, openSource }] = await Promise.all([import('../copy/copy.js'), import('../transport/open.js')])
  const src = await openSource({ transport: 'oci', dir: store.imagesDir, digest: image.manifest.digest }, transport)
  try {
    const d = await openDestination(destRef, transport)
    try {
      return await copyImage(src, d, onProgress ? { onProgress } : {})
    } finally {
      await d.close()
    }
  } finally {
    await src.close()
  }
}

export type PullPolicy = 'missing' | 'always' | 'never'

export function parsePullPolicy(s: string | undefined): PullPolicy {
  if (s === undefined) return 'missing'
  if (s === 'missing' || s === 'always' || s === 'never') return s
  throw new LadingError('USAGE', `--pull: expected missing, always or never, got ${JSON.stringify(s)}`)
}

/**
 * The stored image for `input`, pulled first per the policy (podman's --pull): `missing` pulls
 * only when the store has no such image, `always` every time, `never` not at all. A transport
 * reference (`oci:…`) is always copied: the copy skips the blobs the store already has.
 */
export async function imageForRun(
  store: LocalStore,
  input: string,
  policy: PullPolicy,
  opts: TransportOptions & { onProgress?: ProgressCallback } = {},
): Promise<StoredImage> {
  const n = parseImageName(input)
  const transportRef = n.candidates.length === 1 && n.source.transport !== 'docker'
  let found = policy === 'always' || transportRef ? undefined : await store.findImage(n)
  if (!found) {
    if (policy === 'never') throw store.notFound(input)
    const pulled = await pullImage(store, n, opts)
    found = (await store.listImages()).find((i) => i.name === pulled.name)
    if (!found) throw new LadingError('CONFLICT', `image ${pulled.name} was pulled but is no longer in the store (removed meanwhile?)`)
  }
  return found
}
