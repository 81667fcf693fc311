/**
 * The local image store of `lading run`: one directory per user, holding
 *
 *   images/             an OCI image layout (image-layout.md); each image tagged with its full
 *                       name (image-name.ts); containers pin the manifest they run (see pin())
 *   layers/<alg>/<hex>/ each layer unpacked ALONE, once, by diff_id (config.md §rootfs), with
 *                       overlayfs whiteout markers (layer/apply.ts); immutable once renamed in
 *   containers/<id>/    one directory per container (containers.ts)
 *   runc/               runc's --root: its state of running containers
 *   store.lock          held while containers are created, images removed and gc runs
 *
 * Where: `--store DIR`, else $XDG_DATA_HOME/lading (~/.local/share/lading) for a user, and
 * /var/lib/lading for root, as podman keeps /var/lib/containers for root.
 *
 * Concurrency contract: the layout is safe for concurrent writers (store/layout.ts); a layer is
 * unpacked under a per-layer lock into a temp directory and renamed in (layers.ts), so readers
 * see a complete layer or none; gc takes store.lock and keeps every layer named by an image or a
 * container record, and container records are written under the same lock before their layers
 * are unpacked, so gc cannot remove a layer a starting container is about to use.
 */
import { lstatSync, mkdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Digest } from '../digest/digest.js'
import { LadingError } from '../errors.js'
import { withLock } from '../io/lock.js'
import { Annotation } from '../spec/media-types.js'
import type { Descriptor } from '../spec/types.js'
import { Layout, LAYOUT_FILE } from '../store/layout.js'
import { resolveImage, type PlatformChoice, type ResolvedImage } from '../store/resolve.js'
import { parseImageName, type ImageName } from './image-name.js'

/** The index.json annotation that pins a manifest for a container (value: the container id). */
export const CONTAINER_PIN_ANNOTATION = 'org.lading.container'

/** Lock waits: a layer unpack or a gc may take minutes on a slow disk. */
export const STORE_LOCK_TIMEOUT_MS = 10 * 60_000

export interface StoreEnv {
  env?: NodeJS.ProcessEnv
  uid?: number
  home?: string
}

/** The default store directory for this user (see the module comment). */
export function defaultStoreDir(e: StoreEnv = {}): string {
  const env = e.env ?? process.env
  const uid = e.uid ?? process.getuid?.() ?? 0
  if (uid === 0) return '/var/lib/lading'
  const data = env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : path.join(e.home ?? env.HOME ?? os.homedir(), '.local', 'share')
  return path.join(data, 'lading')
}

export interface StoredImage {
  name: string
  manifest: Descriptor
}

export class LocalStore {
  readonly root: string
  readonly layout: Layout
  private constructor(root: string, layout: Layout) {
    this.root = root
    this.layout = layout
  }

  /** Open (creating when absent) the store at `root`. */
  static async open(root: string): Promise<LocalStore> {
    const abs = path.resolve(root)
    // The store holds other users' nothing: keep it private, as podman's storage is.
    // Synchronous: on every run's path an existing store costs these few calls of microseconds
    // each, where each async call was a round trip through the thread pool (9 of them).
    mkdirSync(abs, { recursive: true, mode: 0o700 })
    for (const d of ['layers', 'containers', 'runc']) mkdirSync(path.join(abs, d), { recursive: true, mode: 0o700 })
    // Opening an existing layout reads nothing and takes no lock: this is on every run's path.
    const images = path.join(abs, 'images')
    const layout = lstatSync(path.join(images, LAYOUT_FILE), { throwIfNoEntry: false }) ? await Layout.open(images) : await Layout.init(images)
    return new LocalStore(abs, layout)
  }

  get layersDir(): string {
    return path.join(this.root, 'layers')
  }
  get containersDir(): string {
    return path.join(this.root, 'containers')
  }
  get runcRoot(): string {
    return path.join(this.root, 'runc')
  }
  get imagesDir(): string {
    return this.layout.dir
  }

  /** Hold the store lock (container creation, image removal, gc) while `fn` runs. */
  async withStoreLock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(path.join(this.root, 'store.lock'), fn, { timeoutMs: STORE_LOCK_TIMEOUT_MS })
  }

  /** The images by name, in index.json order. */
  async listImages(): Promise<StoredImage[]> {
    return (await this.layout.listTags()).map((t) => ({ name: t.tag, manifest: t.descriptor }))
  }

  /** The stored image a user's name (or image id prefix) means, or undefined. */
  async findImage(input: string | ImageName): Promise<StoredImage | undefined> {
    const n = typeof input === 'string' ? parseImageName(input) : input
    const images = await this.listImages()
    for (const c of n.candidates) {
      const hit = images.find((i) => i.name === c)
      if (hit) return hit
    }
    if (n.idPrefix !== undefined) {
      const matches: StoredImage[] = []
      for (const i of images) {
        const id = await this.imageId(i.manifest).catch(() => undefined)
        if (id?.slice(id.indexOf(':') + 1).startsWith(n.idPrefix)) matches.push(i)
      }
      const ids = new Set(matches.map((m) => m.manifest.digest))
      if (ids.size > 1) throw new LadingError('USAGE', `image id prefix ${n.idPrefix} is ambiguous: it matches ${matches.map((m) => m.name).join(', ')}`)
      return matches[0]
    }
    return undefined
  }

  /** The image id (config digest, config.md §ImageID) of a stored manifest. */
  async imageId(manifest: Descriptor, platform?: PlatformChoice): Promise<Digest> {
    return (await this.resolve(manifest, platform)).manifest.config.digest
  }

  /** Resolve a stored manifest (or index, choosing the platform) to one image. */
  async resolve(manifest: Descriptor, platform?: PlatformChoice): Promise<ResolvedImage> {
    return resolveImage(this.layout, { digest: manifest.digest }, platform)
  }

  /** NOT_FOUND for a name the store does not have, naming what was looked for. */
  notFound(input: string): LadingError {
    const n = parseImageName(input)
    return new LadingError(
      'NOT_FOUND',
      `image ${JSON.stringify(input)} is not in the store ${this.root} (looked for ${n.candidates.join(', ')}); lading pull it first`,
    )
  }

  /**
   * Keep `manifest` in the layout for container `id` while it exists, whatever happens to its
   * tag (a later pull may move the tag; gc must keep the image the container was made from).
   */
  async pin(id: string, manifest: Descriptor): Promise<void> {
    const entry: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, annotations: { [CONTAINER_PIN_ANNOTATION]: id } }
    await this.layout.updateIndex((index) => ({
      ...index,
      manifests: [...index.manifests.filter((d) => d.annotations?.[CONTAINER_PIN_ANNOTATION] !== id), entry],
    }))
  }

  async unpin(id: string): Promise<void> {
    await this.layout.updateIndex((index) => ({ ...index, manifests: index.manifests.filter((d) => d.annotations?.[CONTAINER_PIN_ANNOTATION] !== id) }))
  }

  /** Remove an image's name (NOT_FOUND if absent). Its blobs and layers stay until gc. */
  async untag(name: string): Promise<void> {
    await this.layout.removeTag(name)
  }

  /** Every diff_id that a tagged or pinned image of the layout names. */
  async referencedDiffIds(): Promise<Set<string>> {
    const out = new Set<string>()
    const index = await this.layout.readIndex()
    for (const d of index.manifests) {
      if (d.annotations?.[Annotation.RefName] === undefined && d.annotations?.[CONTAINER_PIN_ANNOTATION] === undefined) continue
      try {
        const img = await this.resolve(d, 'any')
        for (const id of img.config.rootfs?.diff_ids ?? []) out.add(id)
      } catch (e) {
        // An image we cannot read keeps gc from knowing its layers: refuse to guess.
        throw new LadingError('CONFLICT', `store gc: image ${d.digest} cannot be read (${(e as Error).message}); nothing removed`, { cause: e })
      }
    }
    return out
  }
}
