/**
 * The registry's storage, named by exactly the operations the server needs, so that another
 * backend (an object store, a later issue) can take the file system's place without the HTTP
 * side changing. `FsRegistryStorage` keeps:
 *
 *   ROOT/<name>/                 repository <name> (a/b -> ROOT/a/b), an OCI image layout that
 *                                `lading ls --layout`, `oci:ROOT/a/b:TAG` and `lading validate` read
 *   ROOT/.lading/content/        one OCI layout holding every blob once (the content store)
 *   ROOT/.lading/uploads/<uuid>/ upload sessions: the content store's own (BlobStore.uploads,
 *                                src/store/fs/uploads.ts), kept here so they survive a restart
 *
 * A repository's blobs are hard links to the content store's files, so a layer shared by many
 * repositories is stored once; a blob's link count says how many repositories still hold it.
 * Repository names are checked by the caller (src/server/names.ts) before they reach a path;
 * the dot-directory `.lading` cannot be a name component.
 *
 * Manifests: every manifest a repository has is an entry of its index.json (a tag is the
 * `org.opencontainers.image.ref.name` annotation, image-layout.md; a manifest pushed by digest
 * is an entry without one), and its bytes are a blob. index.json is changed only through
 * Layout.updateIndex; a manifest's blobs are checked to be present *under the index lock*, which
 * gc holds while it sweeps, so a manifest never lands referencing a blob gc just removed.
 */
import { promises as fsp, statSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import type { Digest } from '../digest/digest.js'
import { LadingError, isErrno } from '../errors.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../io/limits.js'
import { Annotation } from '../spec/media-types.js'
import { manifestMediaType } from '../spec/parse.js'
import type { Descriptor, Index } from '../spec/types.js'
import type { UploadSessions, UploadStatus } from '../store/blob-store.js'
import { blobLinkCount, initLayoutAmongChildren, linkBlob, openBlobFile } from '../store/blob-file.js'
import { FsBlobStore } from '../store/fs/blob-store.js'
import { BLOBS_DIR, INDEX_FILE, LAYOUT_FILE, Layout } from '../store/layout.js'
import { readReferrer } from '../store/referrers.js'

export interface StoredManifest {
  bytes: Buffer
  mediaType: string
  digest: Digest
}
export type ManifestRef = { tag: string } | { digest: Digest }

/** What the HTTP side needs of storage; nothing else. */
export interface RegistryStorage {
  repositoryExists(name: string): Promise<boolean>
  /** Every repository, sorted (the _catalog). */
  listRepositories(): Promise<string[]>

  /** Size of a blob the repository holds, or undefined. */
  statBlob(name: string, digest: Digest): Promise<number | undefined>
  /** An open blob for (ranged) reads; the caller closes it. */
  openBlob(name: string, digest: Digest): Promise<{ fh: FileHandle; size: number } | undefined>
  /** Remove a blob from a repository; false when it had none. */
  deleteBlob(name: string, digest: Digest): Promise<boolean>
  /** Give `name` the blob held by `from` (or, without `from`, by any repository). False when not found. */
  mountBlob(name: string, digest: Digest, from?: string): Promise<boolean>

  startUpload(name: string): Promise<string>
  uploadStatus(name: string, id: string): Promise<UploadStatus | undefined>
  appendUpload(name: string, id: string, body: Readable, start: number | undefined, length: number | undefined): Promise<number>
  /** Verify and publish an upload as blob `digest` of `name`; the session ends. */
  commitUpload(name: string, id: string, digest: Digest): Promise<number>
  cancelUpload(name: string, id: string): Promise<void>

  getManifest(name: string, ref: ManifestRef): Promise<StoredManifest | undefined>
  /**
   * Store a manifest (exact bytes) and, when given, point `tag` at it. Every digest of
   * `requires` must be held by the repository (MANIFEST_BLOB_UNKNOWN naming the missing ones).
   */
  putManifest(name: string, m: StoredManifest, tag: string | undefined, requires: Digest[]): Promise<void>
  /** Remove a manifest and every tag naming it; false when the repository has none by that digest. */
  deleteManifest(name: string, digest: Digest): Promise<boolean>
  /** Remove a tag (the manifest stays, by digest); false when there is no such tag. */
  deleteTag(name: string, tag: string): Promise<boolean>
  /** Sorted tags, or undefined when the repository does not exist. */
  listTags(name: string): Promise<string[] | undefined>
  /** Manifests of the repository whose subject is `digest` (distribution-spec §Listing Referrers). */
  listReferrers(name: string, digest: Digest): Promise<Descriptor[]>
}

/** The dot-directory under ROOT that holds the content store and upload sessions. */
export const SERVER_DIR = '.lading'

export class FsRegistryStorage implements RegistryStorage {
  readonly root: string
  #content: Layout | undefined
  readonly #layouts = new Map<string, Layout>()
  /** index.json parsed, per repository, reused while the file (inode, size, mtime) is unchanged. */
  readonly #indexes = new Map<string, { key: string; index: Index }>()
  /** Manifest bytes by digest (content-addressed, so never stale); bounded. */
  readonly #manifestCache = new Map<string, Buffer>()
  #manifestCacheBytes = 0

  constructor(root: string) {
    this.root = path.resolve(root)
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true })
    const content = await initLayoutAmongChildren(path.join(this.root, SERVER_DIR, 'content'))
    // The content store's blob store, with its upload sessions beside it rather than inside the
    // layout: a committed session becomes a content-store blob, which repositories then link.
    // The server's gc sweeps them by its own --upload-ttl (src/server/gc.ts), not the store's default.
    const blobs = new FsBlobStore(content.dir, { uploadsDir: path.join(this.root, SERVER_DIR, 'uploads'), uploadTtlMs: Infinity })
    this.#content = new Layout({ name: content.dir, blobs, index: content.index, leases: content.leases })
  }

  /** The upload sessions (the content store's BlobStore.uploads). */
  get uploads(): UploadSessions {
    const uploads = this.content.blobs.uploads
    if (!uploads) throw new Error('the content store has no upload sessions')
    return uploads
  }

  get content(): Layout {
    if (!this.#content) throw new Error('FsRegistryStorage used before init()')
    return this.#content
  }

  repoDir(name: string): string {
    return path.join(this.root, ...name.split('/'))
  }

  /** The repository's layout; undefined when absent (create: make it). */
  async layout(name: string, create = false): Promise<Layout | undefined> {
    const hit = this.#layouts.get(name)
    if (hit) return hit
    const dir = this.repoDir(name)
    let layout: Layout
    try {
      layout = create ? await initLayoutAmongChildren(dir) : await Layout.open(dir)
    } catch (e) {
      if (!create && e instanceof LadingError && (e.code === 'NOT_FOUND' || e.code === 'INVALID_LAYOUT')) return undefined
      throw e
    }
    this.#layouts.set(name, layout)
    return layout
  }

  async repositoryExists(name: string): Promise<boolean> {
    return (await this.layout(name)) !== undefined
  }

  async listRepositories(): Promise<string[]> {
    const out: string[] = []
    const walk = async (dir: string, prefix: string): Promise<void> => {
      let entries
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true })
      } catch (e) {
        if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return
        throw e
      }
      if (prefix !== '' && entries.some((e) => e.name === LAYOUT_FILE && e.isFile())) out.push(prefix)
      for (const e of entries) {
        if (!e.isDirectory() || e.name.startsWith('.') || (prefix !== '' && e.name === BLOBS_DIR)) continue
        await walk(path.join(dir, e.name), prefix === '' ? e.name : `${prefix}/${e.name}`)
      }
    }
    await walk(this.root, '')
    return out.sort()
  }

  async statBlob(name: string, digest: Digest): Promise<number | undefined> {
    const layout = await this.layout(name)
    return layout ? layout.blobSize(digest) : undefined
  }

  async openBlob(name: string, digest: Digest): Promise<{ fh: FileHandle; size: number } | undefined> {
    const layout = await this.layout(name)
    return layout ? openBlobFile(layout, digest) : undefined
  }

  async deleteBlob(name: string, digest: Digest): Promise<boolean> {
    const layout = await this.layout(name)
    if (!layout || !(await layout.hasBlob(digest))) return false
    await layout.deleteBlob(digest)
    return true
  }

  async mountBlob(name: string, digest: Digest, from?: string): Promise<boolean> {
    const source = from === undefined ? this.content : await this.layout(from)
    if (!source || !(await source.hasBlob(digest))) return false
    const target = (await this.layout(name, true))!
    if (from !== undefined) {
      // Keep the content store whole: a blob written into a repository by another tool (lading
      // copy oci:ROOT/a/b) is not in it yet.
      await linkBlob(source, this.content, digest)
    }
    return linkBlob(source, target, digest)
  }

  async startUpload(name: string): Promise<string> {
    return (await this.uploads.start(name)).id
  }

  /** The session, when it exists and was started for repository `name` (else undefined). */
  async uploadStatus(name: string, id: string): Promise<UploadStatus | undefined> {
    let st: UploadStatus
    try {
      st = await this.uploads.status(id)
    } catch (e) {
      if (e instanceof LadingError && e.code === 'NOT_FOUND') return undefined
      throw e
    }
    return st.owner === name ? st : undefined
  }

  async appendUpload(name: string, id: string, body: Readable, start: number | undefined, length: number | undefined): Promise<number> {
    try {
      return (await this.uploads.append(id, start, body, length)).size
    } catch (e) {
      // The HTTP side answers 416 with the Range the client may resume from.
      if (e instanceof LadingError && e.code === 'CONFLICT') {
        const size = (await this.uploadStatus(name, id))?.size ?? 0
        throw Object.assign(e, { rangeSize: size })
      }
      throw e
    }
  }

  async commitUpload(name: string, id: string, digest: Digest): Promise<number> {
    // The caller pinned `digest` with InFlight.pinSettled: sweepContent leaves the content-store
    // blob alone from here until the repository's link exists.
    const { size } = await this.uploads.commit(id, { digest })
    const target = (await this.layout(name, true))!
    if (!(await linkBlob(this.content, target, digest))) {
      // Only for a caller that did not pin the digest (see above) while a sweep removed an old
      // unlinked copy: the session is gone, so the client must push the blob again.
      throw new LadingError('BLOB_UNKNOWN', `blob ${digest} vanished from the content store while it was published; push it again`)
    }
    return size
  }

  async cancelUpload(_name: string, id: string): Promise<void> {
    await this.uploads.abort(id)
  }

  async #index(name: string): Promise<Index | undefined> {
    const layout = await this.layout(name)
    if (!layout) return undefined
    let key: string
    try {
      const st = statSync(path.join(layout.dir, INDEX_FILE))
      key = `${st.ino}:${st.size}:${st.mtimeMs}`
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined
      throw e
    }
    const hit = this.#indexes.get(name)
    if (hit && hit.key === key) return hit.index
    const index = await layout.readIndex()
    this.#indexes.set(name, { key, index })
    return index
  }

  async getManifest(name: string, ref: ManifestRef): Promise<StoredManifest | undefined> {
    const layout = await this.layout(name)
    const index = await this.#index(name)
    if (!layout || !index) return undefined
    const entry =
      'tag' in ref ? index.manifests.find((d) => d.annotations?.[Annotation.RefName] === ref.tag) : index.manifests.find((d) => d.digest === ref.digest)
    const digest = entry?.digest ?? ('digest' in ref ? ref.digest : undefined)
    if (digest === undefined) return undefined
    let bytes = this.#manifestCache.get(digest)
    if (!bytes || !entry) {
      // Not an entry of index.json (a child of an index that `lading copy` wrote, say): serve
      // it when the repository holds a blob of that digest that reads as a manifest.
      try {
        bytes = await layout.readBlob({ digest, size: entry?.size }, DEFAULT_MAX_DOCUMENT_BYTES)
      } catch (e) {
        if (e instanceof LadingError && (e.code === 'BLOB_UNKNOWN' || e.code === 'SIZE_LIMIT')) return undefined
        throw e
      }
      this.#cacheManifest(digest, bytes)
    }
    let mediaType = entry?.mediaType
    if (mediaType === undefined) {
      try {
        mediaType = manifestMediaType(bytes, `blob ${digest}`)
      } catch {
        return undefined
      }
    }
    return { bytes, mediaType, digest }
  }

  async putManifest(name: string, m: StoredManifest, tag: string | undefined, requires: Digest[]): Promise<void> {
    // A manifest naming blobs cannot be the first thing in a repository: refuse it before the
    // repository's layout is created.
    if (requires.length > 0 && !(await this.repositoryExists(name))) {
      throw new LadingError('BLOB_UNKNOWN', `manifest references blobs the repository does not have: ${[...new Set(requires)].join(', ')}`)
    }
    const layout = (await this.layout(name, true))!
    const publish = async (): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        await this.content.putBlob(m.bytes, { digest: m.digest, size: m.bytes.length })
        if (await linkBlob(this.content, layout, m.digest)) return
        if (attempt >= 5) throw new LadingError('BLOB_UNKNOWN', `manifest ${m.digest} kept vanishing from the content store while it was stored`)
      }
    }
    await publish()
    await layout.updateIndex(async (index) => {
      const missing: Digest[] = []
      for (const d of new Set(requires)) if (!(await layout.hasBlob(d))) missing.push(d)
      if (missing.length > 0) {
        throw new LadingError('BLOB_UNKNOWN', `manifest references blobs the repository does not have: ${missing.join(', ')}`)
      }
      // gc may have swept the manifest's own link before the lock was ours: link it again.
      if (!(await layout.hasBlob(m.digest))) await publish()
      const desc: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length }
      let manifests = index.manifests
      if (tag !== undefined) {
        // The tag now keeps the manifest: drop its untagged entry, and the tag's old entry.
        manifests = [
          ...manifests.filter((d) => {
            const t = d.annotations?.[Annotation.RefName]
            return t !== tag && !(t === undefined && d.digest === m.digest)
          }),
          { ...desc, annotations: { [Annotation.RefName]: tag } },
        ]
      } else if (!manifests.some((d) => d.digest === m.digest)) {
        manifests = [...manifests, desc]
      }
      return { ...index, manifests }
    })
    this.#cacheManifest(m.digest, m.bytes)
  }

  async deleteManifest(name: string, digest: Digest): Promise<boolean> {
    const layout = await this.layout(name)
    if (!layout) return false
    let found = false
    await layout.updateIndex((index) => {
      const manifests = index.manifests.filter((d) => d.digest !== digest)
      found = manifests.length !== index.manifests.length
      return { ...index, manifests }
    })
    if (!found && !(await this.getManifest(name, { digest }))) return false
    await layout.deleteBlob(digest)
    return true
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    const layout = await this.layout(name)
    if (!layout) return false
    let found = false
    await layout.updateIndex((index) => {
      const hit = index.manifests.filter((d) => d.annotations?.[Annotation.RefName] === tag)
      found = hit.length > 0
      if (!found) return index
      let manifests = index.manifests.filter((d) => d.annotations?.[Annotation.RefName] !== tag)
      // The manifest stays reachable by digest (distribution-spec §Deleting tags removes the tag only).
      for (const h of hit) {
        if (!manifests.some((d) => d.digest === h.digest)) {
          const { annotations: _a, ...rest } = h
          manifests = [...manifests, rest]
        }
      }
      return { ...index, manifests }
    })
    return found
  }

  async listTags(name: string): Promise<string[] | undefined> {
    const index = await this.#index(name)
    if (!index) return undefined
    const tags = new Set<string>()
    for (const d of index.manifests) {
      const t = d.annotations?.[Annotation.RefName]
      if (t !== undefined) tags.add(t)
    }
    return [...tags].sort()
  }

  async listReferrers(name: string, digest: Digest): Promise<Descriptor[]> {
    const layout = await this.layout(name)
    const index = await this.#index(name)
    if (!layout || !index) return []
    const out: Descriptor[] = []
    const seen = new Set<string>()
    for (const d of index.manifests) {
      if (seen.has(d.digest)) continue
      seen.add(d.digest)
      const r = await readReferrer(layout.blobs, d.digest, d.size)
      if (r && r.subject === digest) out.push(r.descriptor)
    }
    return out
  }

  /**
   * Drop untagged manifests (index.json entries without a tag) whose blob is older than
   * `graceMs`, unless a tagged manifest keeps them: as a child of a tagged index (at any depth),
   * or as a referrer (its subject kept, image-spec manifest.md §subject). Their blobs go in the
   * repository gc that follows. Returns the digests dropped.
   */
  async pruneUntagged(name: string, graceMs: number, now = Date.now()): Promise<Digest[]> {
    const layout = await this.layout(name)
    if (!layout) return []
    const dropped: Digest[] = []
    await layout.updateIndex(async (index) => {
      const kept = new Set<string>()
      const docs = new Map<string, { children: string[]; subject?: string | undefined }>()
      const doc = async (d: Descriptor): Promise<{ children: string[]; subject?: string | undefined }> => {
        let hit = docs.get(d.digest)
        if (!hit) {
          try {
            const v = JSON.parse((await layout.readBlob(d)).toString('utf8')) as { manifests?: Array<{ digest?: unknown }>; subject?: { digest?: unknown } }
            const children = Array.isArray(v.manifests) ? v.manifests.map((m) => m?.digest).filter((x): x is string => typeof x === 'string') : []
            hit = { children, subject: typeof v.subject?.digest === 'string' ? v.subject.digest : undefined }
          } catch {
            hit = { children: [] }
          }
          docs.set(d.digest, hit)
        }
        return hit
      }
      const keep = async (digest: string, depth = 0): Promise<void> => {
        if (kept.has(digest) || depth > 16) return
        kept.add(digest)
        const entry = index.manifests.find((e) => e.digest === digest)
        if (entry) for (const c of (await doc(entry)).children) await keep(c, depth + 1)
      }
      for (const e of index.manifests) if (e.annotations?.[Annotation.RefName] !== undefined) await keep(e.digest)
      const untagged = index.manifests.filter((e) => e.annotations?.[Annotation.RefName] === undefined)
      for (let changed = true; changed;) {
        changed = false
        for (const e of untagged) {
          const subject = (await doc(e)).subject
          if (!kept.has(e.digest) && subject !== undefined && kept.has(subject)) {
            await keep(e.digest)
            changed = true
          }
        }
      }
      const manifests: Descriptor[] = []
      for (const e of index.manifests) {
        if (kept.has(e.digest) || e.annotations?.[Annotation.RefName] !== undefined) {
          manifests.push(e)
          continue
        }
        const st = await blobLinkCount(layout, e.digest)
        if (st && now - st.mtimeMs < graceMs) {
          manifests.push(e)
          continue
        }
        dropped.push(e.digest)
      }
      return dropped.length === 0 ? index : { ...index, manifests }
    })
    return dropped
  }

  /**
   * Content-store blobs no repository links to any more (link count 1) and older than
   * `graceMs`, except those `claim` refuses (pinned ones): removed. A mount racing this is safe: once the repository has
   * its link the bytes live on through it, and a mount that finds the file gone falls back to an
   * upload.
   */
  async sweepContent(graceMs: number, claim: (digest: string) => (() => void) | undefined, now = Date.now()): Promise<Array<{ digest: Digest; size: number }>> {
    const removed: Array<{ digest: Digest; size: number }> = []
    for await (const b of this.content.listBlobs()) {
      const st = await blobLinkCount(this.content, b.digest)
      if (!st || st.nlink > 1 || now - st.mtimeMs < graceMs) continue
      // Pins are read last, right before the removal, and the digest is claimed in the same
      // tick: a publisher that pins after this waits for the removal (InFlight.pinSettled).
      const release = claim(b.digest)
      if (!release) continue
      try {
        await this.content.deleteBlob(b.digest)
        removed.push(b)
      } finally {
        release()
      }
    }
    return removed
  }

  /** Bytes in the content store (for /metrics). */
  async contentBytes(): Promise<number> {
    let n = 0
    for await (const b of this.content.listBlobs()) n += b.size
    return n
  }

  #cacheManifest(digest: string, bytes: Buffer): void {
    const LIMIT = 32 * 1024 * 1024
    if (this.#manifestCache.has(digest) || bytes.length > LIMIT / 4) return
    this.#manifestCache.set(digest, bytes)
    this.#manifestCacheBytes += bytes.length
    for (const [k, v] of this.#manifestCache) {
      if (this.#manifestCacheBytes <= LIMIT) break
      this.#manifestCache.delete(k)
      this.#manifestCacheBytes -= v.length
    }
  }
}
