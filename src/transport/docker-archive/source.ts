/**
 * docker-archive source: one image of a `docker save` archive presented as a Docker v2s2 image.
 * The archive is indexed once (TarIndex) and members are served as file ranges, so no layer is
 * extracted or held in memory. Layers are usually uncompressed (their digest is then the config's
 * diff_id, verified while streaming); compressed members are detected by magic and hashed once.
 */
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import { VerifyingStream, verifiedStream } from '../../digest/verify.js'
import { digestOf, type Digest } from '../../digest/digest.js'
import { LadingError } from '../../errors.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../../io/limits.js'
import { detectCompression } from '../../io/compression.js'
import { parseConfig } from '../../spec/parse.js'
import { MediaType, layerMediaType } from '../../spec/media-types.js'
import type { Descriptor, Manifest, RawManifest } from '../../spec/types.js'
import type { ImageReference, ImageSource, TransportOptions } from '../types.js'
import { openArchive } from '../archive/archive-file.js'
import { parseArchiveManifest, type ArchiveManifestItem } from './format.js'
import { formatDockerReference, parseDockerReference } from '../docker-reference.js'
import { displayReference } from '../reference.js'
import type { TarIndex } from '../archive/tar-index.js'

type DockerArchiveRef = Extract<ImageReference, { transport: 'docker-archive' }>

function normalizeRepoTag(t: string): string | undefined {
  try {
    const r = parseDockerReference(t)
    return r.tag !== undefined && r.digest === undefined ? formatDockerReference(r) : undefined
  } catch {
    return undefined
  }
}

function selectImage(items: ArchiveManifestItem[], ref: DockerArchiveRef, label: string): ArchiveManifestItem {
  if (items.length === 0) throw new LadingError('NOT_FOUND', `${label}: the archive holds no images`)
  if (ref.sourceIndex !== undefined) {
    const item = items[ref.sourceIndex]
    if (!item) throw new LadingError('NOT_FOUND', `${label}: no image @${ref.sourceIndex}: the archive holds ${items.length}`)
    return item
  }
  if (ref.name !== undefined) {
    const want = normalizeRepoTag(`${ref.name}:${ref.tag ?? 'latest'}`)
    const found = items.filter((i) => i.RepoTags.some((t) => normalizeRepoTag(t) === want))
    if (found.length === 0) throw new LadingError('NOT_FOUND', `${label}: no image tagged ${ref.name}:${ref.tag ?? 'latest'} in the archive`)
    return found[0]!
  }
  if (items.length > 1) {
    throw new LadingError('USAGE', `${label}: the archive holds ${items.length} images; name one as docker-archive:FILE:NAME:TAG or docker-archive:FILE:@N`)
  }
  return items[0]!
}

async function hashMember(index: TarIndex, name: string): Promise<Digest> {
  const v = new VerifyingStream({ name })
  await pipeline(index.open(name), v, new Writable({ write: (_c, _e, cb) => cb() }))
  return v.result!.digest
}

async function memberHead(index: TarIndex, name: string): Promise<Buffer> {
  const m = index.lookup(name)!
  const chunks: Buffer[] = []
  let n = 0
  const s = index.open(name)
  for await (const c of s) {
    chunks.push(c as Buffer)
    n += (c as Buffer).length
    if (n >= 512 || n >= m.size) break
  }
  s.destroy()
  return Buffer.concat(chunks).subarray(0, 512)
}

export class DockerArchiveSource implements ImageSource {
  readonly ref: DockerArchiveRef
  readonly #index: TarIndex
  readonly #close: () => Promise<void>
  readonly #manifest: RawManifest
  /** digest -> member name */
  readonly #blobs: Map<string, string>
  readonly #label: string

  private constructor(ref: DockerArchiveRef, index: TarIndex, close: () => Promise<void>, manifest: RawManifest, blobs: Map<string, string>, label: string) {
    this.ref = ref
    this.#index = index
    this.#close = close
    this.#manifest = manifest
    this.#blobs = blobs
    this.#label = label
  }

  static async open(ref: DockerArchiveRef, opts: TransportOptions): Promise<DockerArchiveSource> {
    const label = displayReference(ref)
    const archive = await openArchive(ref.file, { label, ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}), ...(opts.stdin ? { stdin: opts.stdin } : {}) })
    try {
      const index = archive.index
      if (!index.has('manifest.json')) throw new LadingError('INVALID_DOCUMENT', `${label}: not a docker-archive: no manifest.json`)
      const items = parseArchiveManifest(await index.read('manifest.json', DEFAULT_MAX_DOCUMENT_BYTES), `${label}: manifest.json`)
      const item = selectImage(items, ref, label)
      if (!index.has(item.Config)) throw new LadingError('INVALID_DOCUMENT', `${label}: manifest.json names config ${item.Config}, which the archive lacks`)
      const configBytes = await index.read(item.Config, DEFAULT_MAX_DOCUMENT_BYTES)
      const configDigest = digestOf(configBytes)
      const config = parseConfig(configBytes, `${label}: ${item.Config}`)
      const diffIds = config.rootfs.diff_ids
      if (diffIds.length !== item.Layers.length) {
        throw new LadingError('INVALID_DOCUMENT', `${label}: manifest.json lists ${item.Layers.length} layers but the config has ${diffIds.length} diff_ids`)
      }
      const blobs = new Map<string, string>([[configDigest, item.Config]])
      const layers: Descriptor[] = []
      for (const [i, name] of item.Layers.entries()) {
        const m = index.lookup(name)
        if (!m) throw new LadingError('INVALID_DOCUMENT', `${label}: manifest.json names layer ${name}, which the archive lacks`)
        const c = detectCompression(await memberHead(index, name)) ?? 'none'
        // Uncompressed: the layer's digest is its diff_id (verified when read). Compressed (newer
        // archives may keep registry blobs as they are): hash the member once.
        const digest = c === 'none' ? diffIds[i]! : await hashMember(index, name)
        blobs.set(digest, name)
        // Field order as the copy engine writes descriptors, so an image written to an archive
        // by Lading reads back with the digest the copy reported.
        layers.push({ mediaType: layerMediaType(c, true), digest, size: m.size })
      }
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaType.DockerManifest,
        config: { mediaType: MediaType.DockerConfig, digest: configDigest, size: configBytes.length },
        layers,
      }
      const bytes = Buffer.from(JSON.stringify(manifest))
      const raw: RawManifest = { bytes, mediaType: MediaType.DockerManifest, digest: digestOf(bytes) }
      return new DockerArchiveSource(ref, index, archive.close, raw, blobs, label)
    } catch (e) {
      await archive.close()
      throw e
    }
  }

  async getManifest(digest?: Digest): Promise<RawManifest> {
    if (digest !== undefined && digest !== this.#manifest.digest) {
      throw new LadingError('MANIFEST_UNKNOWN', `${this.#label}: no manifest ${digest} (the image's manifest is ${this.#manifest.digest})`)
    }
    return this.#manifest
  }

  async getBlob(desc: Descriptor): Promise<import('node:stream').Readable> {
    const name = this.#blobs.get(desc.digest)
    if (name === undefined) throw new LadingError('BLOB_UNKNOWN', `${this.#label}: no blob ${desc.digest}`)
    return verifiedStream(this.#index.open(name), { digest: desc.digest, size: desc.size, name: `${this.#label}: ${name}` })
  }

  /** `await using`: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async close(): Promise<void> {
    await this.#close()
  }
}

export function dockerArchiveSource(ref: DockerArchiveRef, opts: TransportOptions): Promise<ImageSource> {
  return DockerArchiveSource.open(ref, opts)
}
