/**
 * docker-archive destination: writes what `docker load` and skopeo read (the layout skopeo
 * writes): `<config hex>.json`, one `<diff_id hex>.tar` per uncompressed layer, `manifest.json`
 * with Config/RepoTags/Layers, and `repositories`. Several images (and several tags of one image)
 * may be put before commit; each becomes one manifest.json entry.
 *
 * A tar header needs the member's size before its bytes, and an uncompressed layer's size is not
 * known until it has been decompressed, so blobs are spooled to a private temp directory first;
 * commit() then streams the archive in one forward pass (it never seeks), either to a temp file
 * beside FILE that is fsynced and renamed over it (so FILE is never half-written), or straight to
 * stdout / a pipe / a device for `-`, /dev/stdout and FIFOs.
 */
import { createWriteStream, promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { VerifyingStream } from '../../digest/verify.js'
import { digestHex, digestOf, type Digest } from '../../digest/digest.js'
import { LadingError } from '../../errors.js'
import { parseManifest } from '../../spec/parse.js'
import { MediaType, isIndexMediaType, layerInfo } from '../../spec/media-types.js'
import type { Descriptor, RawManifest } from '../../spec/types.js'
import type { TransportOptions } from '../open.js'
import { dockerArchiveRepoTag } from '../reference.js'
import type { DestinationCapabilities, ImageDestination, ImageReference } from '../types.js'
import { writeArchive } from './tar-output.js'

type DockerArchiveRef = Extract<ImageReference, { transport: 'docker-archive' }>

interface PendingImage { configDigest: Digest; layers: Digest[]; repoTags: string[] }

const CAPABILITIES: DestinationCapabilities = {
  manifestTypes: [MediaType.DockerManifest],
  multiImage: false,
  preservesBlobs: false,
  compressions: ['none'],
}

export class DockerArchiveDestination implements ImageDestination {
  readonly ref: DockerArchiveRef
  readonly capabilities = CAPABILITIES
  readonly #opts: TransportOptions
  readonly #spool: string
  readonly #blobs = new Map<string, number>()
  readonly #images = new Map<string, PendingImage>()

  private constructor(ref: DockerArchiveRef, opts: TransportOptions, spool: string) {
    this.ref = ref
    this.#opts = opts
    this.#spool = spool
  }

  static async open(ref: DockerArchiveRef, opts: TransportOptions): Promise<DockerArchiveDestination> {
    if (ref.sourceIndex !== undefined) throw new LadingError('USAGE', `docker-archive:${ref.file}:@${ref.sourceIndex}: an image index (@N) can only be read, not written`)
    const spool = await fsp.mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'lading-docker-archive-'))
    return new DockerArchiveDestination(ref, opts, spool)
  }

  #blobFile(d: Digest): string { return path.join(this.#spool, digestHex(d)) }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    return this.#blobs.has(desc.digest)
  }

  async putBlob(body: Readable, expected?: Partial<Descriptor>): Promise<Descriptor> {
    const v = new VerifyingStream({ digest: expected?.digest, size: expected?.size, name: expected?.digest ?? 'blob' }, undefined, body)
    const tmp = path.join(this.#spool, `.incoming-${Math.random().toString(16).slice(2)}`)
    try {
      await pipeline(body, v, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }))
    } catch (e) {
      await fsp.rm(tmp, { force: true })
      throw e
    }
    const { digest, size } = v.result!
    await fsp.rename(tmp, this.#blobFile(digest))
    this.#blobs.set(digest, size)
    return { mediaType: expected?.mediaType ?? MediaType.DockerLayer, digest, size }
  }

  /**
   * Records an image for manifest.json. `tag` is either a plain tag (combined with the
   * reference's NAME) or a full `NAME:TAG` (as skopeo's --additional-tag takes); without one,
   * the reference's NAME:TAG (if any) names the image. To write several images, open the
   * destination without a NAME and give each image full NAME:TAG tags: a tag names one image,
   * so putting it again moves it.
   */
  async putManifest(raw: RawManifest, tag?: string): Promise<Descriptor> {
    const label = `docker-archive:${this.ref.file}`
    if (isIndexMediaType(raw.mediaType)) throw new LadingError('UNSUPPORTED', `${label}: a docker-archive holds single images, not an image index (choose a platform)`)
    const m = parseManifest(raw.bytes, `${label}: manifest ${raw.digest}`)
    for (const l of m.layers) {
      const info = layerInfo(l.mediaType)
      if (!info || info.compression !== 'none') throw new LadingError('UNSUPPORTED', `${label}: layer ${l.digest} has media type ${l.mediaType}; a docker-archive stores uncompressed layers`)
      if (!this.#blobs.has(l.digest)) throw new LadingError('BLOB_UNKNOWN', `${label}: manifest names layer ${l.digest}, which was not put`)
    }
    if (!this.#blobs.has(m.config.digest)) throw new LadingError('BLOB_UNKNOWN', `${label}: manifest names config ${m.config.digest}, which was not put`)
    let img = this.#images.get(raw.digest)
    if (!img) {
      img = { configDigest: m.config.digest, layers: m.layers.map((l) => l.digest), repoTags: [] }
      this.#images.set(raw.digest, img)
    }
    const repoTag = this.#repoTag(tag)
    if (repoTag !== undefined && !img.repoTags.includes(repoTag)) {
      // A tag names one image in an archive: move it from any other image.
      for (const other of this.#images.values()) other.repoTags = other.repoTags.filter((t) => t !== repoTag)
      img.repoTags.push(repoTag)
    }
    return { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length }
  }

  #repoTag(tag: string | undefined): string | undefined {
    if (tag === undefined) return this.ref.name !== undefined ? dockerArchiveRepoTag(this.ref.name, this.ref.tag ?? 'latest') : undefined
    const colon = tag.lastIndexOf(':')
    if (colon > 0 && colon > tag.lastIndexOf('/')) return dockerArchiveRepoTag(tag.slice(0, colon), tag.slice(colon + 1))
    if (this.ref.name === undefined) {
      throw new LadingError('USAGE', `docker-archive:${this.ref.file}: tag ${JSON.stringify(tag)} needs a name: give NAME:TAG, or name the archive image as docker-archive:FILE:NAME:TAG`)
    }
    return dockerArchiveRepoTag(this.ref.name, tag)
  }

  async commit(): Promise<void> {
    if (this.#images.size === 0) throw new LadingError('USAGE', `docker-archive:${this.ref.file}: nothing to write: no image was put`)
    const manifest = [...this.#images.values()].map((img) => ({
      Config: `${digestHex(img.configDigest)}.json`,
      RepoTags: img.repoTags,
      Layers: img.layers.map((d) => `${digestHex(d)}.tar`),
    }))
    // The legacy part (Docker image spec v1.2, for loaders that predate manifest.json): a
    // directory per layer, named by a chain id over the diff_ids, holding VERSION, json and
    // layer.tar (a symlink to the real layer file), and `repositories` naming each tag's top layer.
    const legacy = new Map<string, { id: string; parent?: string; layerFile: string }>()
    const topIds = new Map<PendingImage, string>()
    for (const img of this.#images.values()) {
      let parent: string | undefined
      for (const l of img.layers) {
        const id = digestHex(digestOf(parent === undefined ? digestHex(l) : `${digestHex(l)} ${parent}`))
        legacy.set(id, { id, ...(parent !== undefined ? { parent } : {}), layerFile: `${digestHex(l)}.tar` })
        parent = id
      }
      if (parent !== undefined) topIds.set(img, parent)
    }
    const repositories: Record<string, Record<string, string>> = {}
    for (const img of this.#images.values()) {
      const top = topIds.get(img)
      if (top === undefined) continue
      for (const rt of img.repoTags) {
        const i = rt.lastIndexOf(':')
        ;(repositories[rt.slice(0, i)] ??= {})[rt.slice(i + 1)] = top
      }
    }
    await writeArchive(this.ref.file, this.#opts.stdout, async (sink) => {
      for (const img of this.#images.values()) {
        await sink.file(`${digestHex(img.configDigest)}.json`, this.#blobFile(img.configDigest), this.#blobs.get(img.configDigest)!)
        for (const l of img.layers) await sink.file(`${digestHex(l)}.tar`, this.#blobFile(l), this.#blobs.get(l)!)
      }
      for (const l of legacy.values()) {
        await sink.dir(`${l.id}/`)
        await sink.bytes(`${l.id}/VERSION`, Buffer.from('1.0'))
        await sink.bytes(`${l.id}/json`, Buffer.from(JSON.stringify({ id: l.id, ...(l.parent ? { parent: l.parent } : {}), created: '1970-01-01T00:00:00Z', container_config: {} })))
        await sink.symlink(`${l.id}/layer.tar`, `../${l.layerFile}`)
      }
      await sink.bytes('manifest.json', Buffer.from(JSON.stringify(manifest)))
      if (Object.keys(repositories).length > 0) await sink.bytes('repositories', Buffer.from(JSON.stringify(repositories)))
    })
  }

  /** Removes the spool; an uncommitted archive is simply never written. */
  async close(): Promise<void> {
    await fsp.rm(this.#spool, { recursive: true, force: true })
  }
}

export function dockerArchiveDestination(ref: DockerArchiveRef, opts: TransportOptions): Promise<ImageDestination> {
  return DockerArchiveDestination.open(ref, opts)
}
