/**
 * dir: destination: skopeo's directory format (see format.ts). Blobs are written to a temp file
 * in the directory, verified, fsynced and renamed (visible only when complete); the manifests are
 * written in commit(), the top-level `manifest.json` last, so an interrupted copy leaves a
 * directory a rerun completes (blobs already there are kept and skipped). Unlike skopeo, an
 * existing dir: image is not emptied first, for exactly that reason; its manifest is replaced.
 * A directory this destination created is removed again if the copy does not commit.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { VerifyingStream } from '../../digest/verify.js'
import { LadingError, isErrno } from '../../errors.js'
import { releaseTemp, removeTemp, sweepAbandoned } from '../../io/cleanup.js'
import { atomicWriteFile, createNewFileStream, fsyncDir, isTempName, tempNamePid, tempPathFor } from '../../io/fs.js'
import type { Descriptor, RawManifest } from '../../spec/types.js'
import { DIR_CAPABILITIES } from '../capabilities.js'
import { displayReference } from '../reference.js'
import type { ImageDestination, ImageReference, TransportOptions } from '../types.js'
import { MANIFEST_FILE, VERSION_FILE, VERSION_TEXT, blobFile, instanceManifestFile } from './format.js'

type DirRef = Extract<ImageReference, { transport: 'dir' }>

const CAPABILITIES = DIR_CAPABILITIES

export class DirDestination implements ImageDestination {
  readonly ref: DirRef
  readonly capabilities = CAPABILITIES
  readonly #manifests = new Map<string, RawManifest>()
  #last: RawManifest | undefined
  /** The directory open() created (the topmost, if parents were missing): removed if nothing is committed. */
  #created: string | undefined
  #committed = false

  private constructor(ref: DirRef, created: string | undefined) {
    this.ref = ref
    this.#created = created
  }

  static async open(ref: DirRef): Promise<DirDestination> {
    const dir = ref.dir
    const created = await fsp.mkdir(dir, { recursive: true })
    try {
      const entries = (await fsp.readdir(dir)).filter((n) => !isTempName(n))
      if (entries.length > 0 && !entries.includes(VERSION_FILE)) {
        throw new LadingError(
          'EXISTS',
          `${displayReference(ref)}: directory is not empty and is not a dir: image (no ${VERSION_FILE} file); refusing to write into it`,
        )
      }
      // Blob temp files of a writer killed before it could clean up.
      await sweepAbandoned(dir, (n) => (isTempName(n) ? tempNamePid(n) : undefined))
      const version = path.join(dir, VERSION_FILE)
      let current: string | undefined
      try {
        current = await fsp.readFile(version, 'utf8')
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e
      }
      if (current !== VERSION_TEXT) await atomicWriteFile(version, VERSION_TEXT)
    } catch (e) {
      if (created !== undefined) await fsp.rm(created, { recursive: true, force: true, maxRetries: 3 })
      throw e
    }
    return new DirDestination(ref, created)
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    try {
      const st = await fsp.stat(blobFile(this.ref.dir, desc.digest))
      return st.isFile() && st.size === desc.size
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return false
      throw e
    }
  }

  async putBlob(body: Readable, expected?: Partial<Descriptor>): Promise<Descriptor> {
    const v = new VerifyingStream({ digest: expected?.digest, size: expected?.size, name: expected?.digest ?? 'blob' }, undefined, body)
    const tmp = tempPathFor(path.join(this.ref.dir, 'blob'))
    try {
      // flush: fsync before close, so the rename below publishes durable bytes.
      await pipeline(body, v, await createNewFileStream(tmp, { mode: 0o644, flush: true }))
      const { digest, size } = v.result!
      await fsp.rename(tmp, blobFile(this.ref.dir, digest))
      releaseTemp(tmp)
      await fsyncDir(this.ref.dir)
      return { mediaType: expected?.mediaType ?? 'application/octet-stream', digest, size }
    } catch (e) {
      body.destroy() // a failed open never reached the pipeline, which destroys it otherwise
      await removeTemp(tmp)
      throw e
    }
  }

  /** Manifests are kept until commit; the last one put is the top-level `manifest.json`. */
  async putManifest(raw: RawManifest, _tag?: string): Promise<Descriptor> {
    this.#manifests.set(raw.digest, raw)
    this.#last = raw
    return { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length }
  }

  async commit(): Promise<void> {
    const top = this.#last
    if (!top) throw new LadingError('USAGE', `${displayReference(this.ref)}: nothing to commit: no manifest was put`)
    for (const m of this.#manifests.values()) {
      if (m.digest !== top.digest) await atomicWriteFile(instanceManifestFile(this.ref.dir, m.digest), m.bytes)
    }
    await atomicWriteFile(path.join(this.ref.dir, MANIFEST_FILE), top.bytes)
    this.#committed = true
  }

  /** A directory open() created is removed if the copy did not commit (and no manifest.json appeared in it meanwhile). */
  /** `await using`: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async close(): Promise<void> {
    const created = this.#created
    this.#created = undefined
    if (created === undefined || this.#committed) return
    if (
      await fsp.lstat(path.join(this.ref.dir, MANIFEST_FILE)).then(
        () => true,
        () => false,
      )
    )
      return
    // Counted among the temporary files an interrupted run reports (src/io/cleanup.ts).
    await removeTemp(created)
  }
}

export async function dirDestination(ref: DirRef, _opts: TransportOptions): Promise<ImageDestination> {
  return DirDestination.open(ref)
}
