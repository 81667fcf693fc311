/**
 * docker-archive destination: writes what `docker load` and skopeo read (the layout skopeo
 * writes): `<config hex>.json`, one `<diff_id hex>.tar` per uncompressed layer, `manifest.json`
 * with Config/RepoTags/Layers, and `repositories`. Several images (and several tags of one image)
 * may be put before commit; each becomes one manifest.json entry.
 *
 * Where a blob goes while the copy runs (a tar header needs the member's size before its bytes,
 * and an uncompressed layer's size is not known until it has been decompressed):
 * - into the archive itself, for a FILE target: the temp archive beside FILE (archive-writer.ts)
 *   takes one streamed member at a time, its header written once the blob verified. A layer is
 *   written once instead of spooled and copied;
 * - into memory, for a small blob of known size (a config), so it never takes that one slot;
 * - into a private spool directory otherwise (a second layer while the first streams, and every
 *   larger blob when the target is a stream).
 * commit() appends what is not in the archive yet, manifest.json and the legacy entries, then
 * fsyncs the temp archive and renames it over FILE, so FILE is never half-written; for `-`,
 * /dev/stdout, FIFOs and sockets it streams the whole archive in one forward pass instead.
 */
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { VerifyingStream } from '../../digest/verify.js'
import { digestHex, digestOf, type Digest } from '../../digest/digest.js'
import { LadingError, quoteName } from '../../errors.js'
import { makeTempDir, removeTemp, sweepAbandoned, tempDirPid } from '../../io/cleanup.js'
import { assertNoContent, createNewFileStream, sweepAbandonedTempsOf } from '../../io/fs.js'
import { parseManifest } from '../../spec/parse.js'
import { MediaType, isConfigMediaType, isIndexMediaType, layerInfo } from '../../spec/media-types.js'
import type { Descriptor, RawManifest } from '../../spec/types.js'
import { DOCKER_ARCHIVE_CAPABILITIES } from '../capabilities.js'
import { displayReference, dockerRepoTag } from '../reference.js'
import type { ImageDestination, ImageReference, TransportOptions } from '../types.js'
import { ArchiveWriter } from '../archive/archive-writer.js'
import { isStreamTarget, writeArchive, type TarSink } from '../archive/tar-output.js'

type DockerArchiveRef = Extract<ImageReference, { transport: 'docker-archive' }>

interface PendingImage {
  configDigest: Digest
  layers: Digest[]
  repoTags: string[]
}

/** Where a verified blob is held until commit. */
type Stored =
  | { where: 'archive'; member: string; offset: number; size: number }
  /** In an archive this destination published (an earlier commit): re-verified when copied. */
  | { where: 'published'; file: string; offset: number; size: number }
  | { where: 'memory'; bytes: Buffer; size: number }
  | { where: 'spool'; file: string; size: number }

/** Blobs of known size up to this are held in memory (configs), within MEMORY_BUDGET in all. */
const SMALL_BLOB = 1024 * 1024
const MEMORY_BUDGET = 32 * 1024 * 1024

/** The spool directory's name in the temp dir: `<prefix><pid>-XXXXXX` (src/io/cleanup.ts makeTempDir). */
const SPOOL_PREFIX = 'lading-docker-archive-'

const CAPABILITIES = DOCKER_ARCHIVE_CAPABILITIES

export class DockerArchiveDestination implements ImageDestination {
  readonly ref: DockerArchiveRef
  readonly capabilities = CAPABILITIES
  readonly #opts: TransportOptions
  readonly #spool: string
  /** FILE is a pipe, a device or stdout: no temp archive, the archive is streamed at commit. */
  readonly #streamTarget: boolean
  #archive: Promise<ArchiveWriter> | undefined
  /** A blob is streaming into the archive (claimed synchronously, before any await). */
  #archiveBusy = false
  /** FILE is an archive this destination published: a later commit replaces it. */
  #published = false
  #inMemory = 0
  readonly #blobs = new Map<string, Stored>()
  readonly #images = new Map<string, PendingImage>()

  private constructor(ref: DockerArchiveRef, opts: TransportOptions, spool: string, streamTarget: boolean) {
    this.ref = ref
    this.#opts = opts
    this.#spool = spool
    this.#streamTarget = streamTarget
  }

  static async open(ref: DockerArchiveRef, opts: TransportOptions): Promise<DockerArchiveDestination> {
    if (ref.sourceIndex !== undefined)
      throw new LadingError('USAGE', `${displayReference(ref)}:@${ref.sourceIndex}: an image index (@N) can only be read, not written`)
    const streamTarget = await isStreamTarget(ref.file)
    const tmpDir = opts.tmpDir ?? os.tmpdir()
    if (!streamTarget) {
      // skopeo 1.9 refuses too ("docker-archive doesn't support modifying existing images").
      await assertNoContent(ref.file, `docker-archive:${ref.file}`)
      await sweepAbandonedTempsOf(ref.file)
    }
    await sweepAbandoned(tmpDir, (name) => tempDirPid(name, SPOOL_PREFIX))
    const spool = await makeTempDir(tmpDir, SPOOL_PREFIX)
    return new DockerArchiveDestination(ref, opts, spool, streamTarget)
  }

  #writer(): Promise<ArchiveWriter> {
    this.#archive ??= ArchiveWriter.create(this.ref.file)
    return this.#archive
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    return this.#blobs.has(desc.digest)
  }

  async putBlob(body: Readable, expected?: Partial<Descriptor>): Promise<Descriptor> {
    const known = expected?.digest !== undefined ? this.#blobs.get(expected.digest) : undefined
    if (known && (expected?.size === undefined || expected.size === known.size)) {
      body.destroy()
      return { mediaType: expected?.mediaType ?? MediaType.DockerLayer, digest: expected!.digest!, size: known.size }
    }
    const v = new VerifyingStream({ digest: expected?.digest, size: expected?.size, name: expected?.digest ?? 'blob' }, undefined, body)
    const size = expected?.size
    let stored: Stored
    if (size !== undefined && size <= SMALL_BLOB && this.#inMemory + size <= MEMORY_BUDGET) {
      this.#inMemory += size
      try {
        const chunks: Buffer[] = []
        await pipeline(
          body,
          v,
          new Writable({
            write(c: Buffer, _e, cb) {
              chunks.push(c)
              cb()
            },
          }),
        )
        stored = { where: 'memory', bytes: Buffer.concat(chunks), size }
      } catch (e) {
        this.#inMemory -= size
        throw e
      }
    } else if (!this.#streamTarget && !this.#archiveBusy) {
      this.#archiveBusy = true
      try {
        const w = await this.#writer()
        // Named as the blob will most likely be listed (a config or a layer); commit() copies it
        // under the other name if it is listed that way too.
        const suffix = isConfigMediaType(expected?.mediaType ?? '') ? '.json' : '.tar'
        let member = ''
        const r = await w.streamMember([body, v], () => {
          const digest = v.result!.digest
          if (this.#blobs.has(digest)) return undefined // the same bytes arrived before (their digest unknown in advance)
          member = `${digestHex(digest)}${suffix}`
          return member
        })
        stored = r === undefined ? this.#blobs.get(v.result!.digest)! : { where: 'archive', member, offset: r.offset, size: r.size }
      } catch (e) {
        body.destroy()
        throw e
      } finally {
        this.#archiveBusy = false
      }
    } else {
      const tmp = path.join(this.#spool, `.incoming-${Math.random().toString(16).slice(2)}`)
      try {
        await pipeline(body, v, await createNewFileStream(tmp, { mode: 0o600 }))
      } catch (e) {
        body.destroy() // a failed open never reached the pipeline, which destroys it otherwise
        await fsp.rm(tmp, { force: true })
        throw e
      }
      const file = path.join(this.#spool, digestHex(v.result!.digest))
      await fsp.rename(tmp, file)
      stored = { where: 'spool', file, size: v.result!.size }
    }
    const { digest } = v.result!
    if (!this.#blobs.has(digest)) this.#blobs.set(digest, stored)
    return { mediaType: expected?.mediaType ?? MediaType.DockerLayer, digest, size: stored.size }
  }

  /**
   * Records an image for manifest.json. `tag` is either a plain tag (combined with the
   * reference's NAME) or a full `NAME:TAG` (as skopeo's --additional-tag takes); without one,
   * the reference's NAME:TAG (if any) names the image. To write several images, open the
   * destination without a NAME and give each image full NAME:TAG tags: a tag names one image,
   * so putting it again moves it.
   */
  async putManifest(raw: RawManifest, tag?: string): Promise<Descriptor> {
    const label = displayReference(this.ref)
    if (isIndexMediaType(raw.mediaType))
      throw new LadingError('UNSUPPORTED', `${label}: a docker-archive holds single images, not an image index (choose a platform)`)
    const m = parseManifest(raw.bytes, `${label}: manifest ${raw.digest}`)
    for (const l of m.layers) {
      const info = layerInfo(l.mediaType)
      if (!info || info.compression !== 'none')
        throw new LadingError('UNSUPPORTED', `${label}: layer ${l.digest} has media type ${l.mediaType}; a docker-archive stores uncompressed layers`)
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
    if (tag === undefined) return this.ref.name !== undefined ? dockerRepoTag(this.ref.name, this.ref.tag ?? 'latest') : undefined
    const colon = tag.lastIndexOf(':')
    if (colon > 0 && colon > tag.lastIndexOf('/')) return dockerRepoTag(tag.slice(0, colon), tag.slice(colon + 1))
    if (this.ref.name === undefined) {
      throw new LadingError(
        'USAGE',
        `${displayReference(this.ref)}: tag ${quoteName(tag)} needs a name: give NAME:TAG, or name the archive image as docker-archive:FILE:NAME:TAG`,
      )
    }
    return dockerRepoTag(this.ref.name, tag)
  }

  async commit(): Promise<void> {
    if (this.#images.size === 0) throw new LadingError('USAGE', `${displayReference(this.ref)}: nothing to write: no image was put`)
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
    const members: Array<{ name: string; digest: Digest }> = []
    for (const img of this.#images.values()) {
      members.push({ name: `${digestHex(img.configDigest)}.json`, digest: img.configDigest })
      for (const l of img.layers) members.push({ name: `${digestHex(l)}.tar`, digest: l })
    }
    const legacyEntries = [...legacy.values()]
    const manifestBytes = Buffer.from(JSON.stringify(manifest))
    const repositoriesBytes = Object.keys(repositories).length > 0 ? Buffer.from(JSON.stringify(repositories)) : undefined
    const legacyJson = (l: { id: string; parent?: string }): Buffer =>
      Buffer.from(JSON.stringify({ id: l.id, ...(l.parent ? { parent: l.parent } : {}), created: '1970-01-01T00:00:00Z', container_config: {} }))
    // After the blobs, whichever way the archive is written: the legacy per-layer folders, then
    // manifest.json and repositories.
    const indexMembers = async (out: {
      dir(name: string): Promise<void>
      bytes(name: string, b: Buffer): Promise<void>
      symlink(name: string, target: string): Promise<void>
    }): Promise<void> => {
      for (const l of legacyEntries) {
        await out.dir(`${l.id}/`)
        await out.bytes(`${l.id}/VERSION`, Buffer.from('1.0'))
        await out.bytes(`${l.id}/json`, legacyJson(l))
        await out.symlink(`${l.id}/layer.tar`, `../${l.layerFile}`)
      }
      await out.bytes('manifest.json', manifestBytes)
      if (repositoriesBytes) await out.bytes('repositories', repositoriesBytes)
    }

    if (this.#streamTarget) {
      await writeArchive(
        this.ref.file,
        this.#opts.stdout,
        async (sink: TarSink) => {
          for (const m of members) {
            const b = this.#blobs.get(m.digest)!
            if (b.where === 'memory') await sink.bytes(m.name, b.bytes)
            else if (b.where === 'spool') await sink.file(m.name, b.file, b.size)
            else throw new Error(`docker-archive: ${m.name} is in an archive that is never written to a stream`)
          }
          await indexMembers(sink)
        },
        `docker-archive:${this.ref.file}`,
      )
      return
    }
    const w = await this.#writer()
    for (const m of members) {
      const b = this.#blobs.get(m.digest)!
      if (b.where === 'archive') {
        // Streamed in under this name already; under another (a blob that is both a config and
        // a layer), copied from where it sits.
        if (b.member !== m.name) await w.addCopy(m.name, b.offset, b.size)
      } else if (b.where === 'published') {
        await w.addFile(m.name, b.file, b.size, { offset: b.offset, digest: m.digest })
      } else if (b.where === 'memory') await w.addBytes(m.name, b.bytes)
      else await w.addFile(m.name, b.file, b.size)
    }
    await indexMembers({ dir: (n) => w.addDir(n), bytes: (n, b) => w.addBytes(n, b), symlink: (n, t) => w.addSymlink(n, t) })
    await w.publish(`docker-archive:${this.ref.file}`, this.#published)
    this.#published = true
    this.#archive = undefined
    // A later commit (another image into this destination) builds a new archive; what the
    // published one holds is copied from it, and checked against its digest on the way.
    const file = path.resolve(this.ref.file)
    for (const [digest, b] of this.#blobs) {
      if (b.where === 'archive') this.#blobs.set(digest, { where: 'published', file, offset: b.offset, size: b.size })
    }
  }

  /** Removes the spool and an unpublished temp archive; an uncommitted archive is simply never written. */
  /** `await using`: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async close(): Promise<void> {
    const w = this.#archive
    this.#archive = undefined
    if (w)
      await w.then(
        (a) => a.discard(),
        () => {},
      )
    await removeTemp(this.#spool)
  }
}

export function dockerArchiveDestination(ref: DockerArchiveRef, opts: TransportOptions): Promise<ImageDestination> {
  return DockerArchiveDestination.open(ref, opts)
}
