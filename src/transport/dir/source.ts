/** dir: source: skopeo's directory format (see format.ts). Every read is verified. */
import { createReadStream, promises as fsp } from 'node:fs'
import type { Readable } from 'node:stream'
import { digestOf, type Digest } from '../../digest/digest.js'
import { verifiedStream, verifyBytes } from '../../digest/verify.js'
import { LadingError, isErrno } from '../../errors.js'
import { DEFAULT_MAX_DOCUMENT_BYTES, readAllLimited } from '../../io/limits.js'
import { manifestMediaType } from '../../spec/parse.js'
import type { Descriptor, RawManifest } from '../../spec/types.js'
import { displayReference } from '../reference.js'
import type { ImageReference, ImageSource, TransportOptions } from '../types.js'
import { MANIFEST_FILE, blobFile, instanceManifestFile } from './format.js'
import path from 'node:path'

type DirRef = Extract<ImageReference, { transport: 'dir' }>

async function openRegular(file: string, label: string, missing: () => LadingError): Promise<{ fd: fsp.FileHandle; size: number }> {
  let fd: fsp.FileHandle
  try {
    fd = await fsp.open(file, 'r')
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw missing()
    throw e
  }
  const st = await fd.stat()
  if (!st.isFile()) {
    await fd.close()
    throw new LadingError('INVALID_DOCUMENT', `${label}: ${path.basename(file)} is not a regular file`)
  }
  return { fd, size: st.size }
}

export class DirSource implements ImageSource {
  readonly ref: DirRef
  readonly #label: string
  #top: RawManifest | undefined

  constructor(ref: DirRef) {
    this.ref = ref
    this.#label = displayReference(ref)
  }

  async #readDoc(file: string, missing: () => LadingError): Promise<Buffer> {
    const { fd, size } = await openRegular(file, this.#label, missing)
    try {
      if (size > DEFAULT_MAX_DOCUMENT_BYTES)
        throw new LadingError('SIZE_LIMIT', `${this.#label}: ${path.basename(file)} is larger than the limit of ${DEFAULT_MAX_DOCUMENT_BYTES} bytes`)
      return await readAllLimited(fd.createReadStream({ autoClose: false }), DEFAULT_MAX_DOCUMENT_BYTES, `${this.#label}: ${path.basename(file)}`)
    } finally {
      await fd.close()
    }
  }

  async getManifest(digest?: Digest): Promise<RawManifest> {
    if (!this.#top) {
      const bytes = await this.#readDoc(
        path.join(this.ref.dir, MANIFEST_FILE),
        () => new LadingError('NOT_FOUND', `${this.#label}: no ${MANIFEST_FILE} (not a dir: image)`),
      )
      this.#top = { bytes, mediaType: manifestMediaType(bytes, `${this.#label}: ${MANIFEST_FILE}`), digest: digestOf(bytes) }
    }
    if (digest === undefined || digest === this.#top.digest) return this.#top
    const file = instanceManifestFile(this.ref.dir, digest)
    const bytes = await this.#readDoc(file, () => new LadingError('MANIFEST_UNKNOWN', `${this.#label}: no manifest ${digest}`))
    verifyBytes(bytes, { digest, name: `${this.#label}: ${path.basename(file)}` })
    return { bytes, mediaType: manifestMediaType(bytes, `${this.#label}: ${path.basename(file)}`), digest }
  }

  async getBlob(desc: Descriptor): Promise<Readable> {
    const file = blobFile(this.ref.dir, desc.digest)
    const { fd } = await openRegular(file, this.#label, () => new LadingError('BLOB_UNKNOWN', `${this.#label}: no blob ${desc.digest}`))
    await fd.close()
    return verifiedStream(createReadStream(file), { digest: desc.digest, size: desc.size, name: `${this.#label}: blob ${desc.digest}` })
  }

  /** `await using`: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async close(): Promise<void> {}
}

export async function dirSource(ref: DirRef, _opts: TransportOptions): Promise<ImageSource> {
  return new DirSource(ref)
}
