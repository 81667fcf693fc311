/**
 * oci-archive: source: a tar of an OCI image layout. The tar is indexed once (a compressed or
 * piped archive is spooled to a temp file first) and blobs are served as verified file ranges of
 * the archive, so nothing is extracted. Reading follows image-layout.md: oci-layout must say
 * 1.0.0, index.json is the entry point, blobs are at blobs/<alg>/<encoded>.
 */
import type { Readable } from 'node:stream'
import { digestAlgorithm, digestHex, type Digest } from '../../digest/digest.js'
import { verifiedStream, verifyBytes } from '../../digest/verify.js'
import { LadingError } from '../../errors.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../../io/limits.js'
import { parseIndex, parseLayoutFile } from '../../spec/parse.js'
import type { Index } from '../../spec/types.js'
import { openArchive } from '../archive/archive-file.js'
import type { TarIndex } from '../archive/tar-index.js'
import { LayoutSource, type LayoutReader } from '../oci/layout-source.js'
import { displayReference } from '../reference.js'
import type { ImageReference, ImageSource, TransportOptions } from '../types.js'

type OciArchiveRef = Extract<ImageReference, { transport: 'oci-archive' }>

class ArchiveLayoutReader implements LayoutReader {
  readonly #index: TarIndex
  readonly #label: string
  constructor(index: TarIndex, label: string) {
    this.#index = index
    this.#label = label
  }

  #member(d: Digest): string {
    const name = `blobs/${digestAlgorithm(d)}/${digestHex(d)}`
    if (!this.#index.has(name)) throw new LadingError('BLOB_UNKNOWN', `${this.#label}: blob ${d} is not in the archive`)
    return name
  }

  async readIndex(): Promise<Index> {
    return parseIndex(await this.#index.read('index.json', DEFAULT_MAX_DOCUMENT_BYTES), `${this.#label}: index.json`)
  }

  async getBlob(desc: { digest: Digest; size?: number }): Promise<Readable> {
    return verifiedStream(this.#index.open(this.#member(desc.digest)), { digest: desc.digest, size: desc.size, name: `${this.#label}: blob ${desc.digest}` })
  }

  async readBlob(desc: { digest: Digest; size?: number }, maxBytes = DEFAULT_MAX_DOCUMENT_BYTES): Promise<Buffer> {
    const bytes = await this.#index.read(this.#member(desc.digest), maxBytes)
    verifyBytes(bytes, { digest: desc.digest, size: desc.size, name: `${this.#label}: blob ${desc.digest}` })
    return bytes
  }
}

export async function ociArchiveSource(ref: OciArchiveRef, opts: TransportOptions): Promise<ImageSource> {
  const label = displayReference(ref)
  const archive = await openArchive(ref.file, { label, ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}), ...(opts.stdin ? { stdin: opts.stdin } : {}) })
  try {
    if (!archive.index.has('oci-layout')) throw new LadingError('INVALID_LAYOUT', `${label}: not an OCI layout archive: no oci-layout file`)
    parseLayoutFile(await archive.index.read('oci-layout', 64 * 1024), `${label}: oci-layout`)
    if (!archive.index.has('index.json')) throw new LadingError('INVALID_LAYOUT', `${label}: not an OCI layout archive: no index.json`)
    return new LayoutSource(ref, new ArchiveLayoutReader(archive.index, label), label, { tag: ref.tag }, archive.close)
  } catch (e) {
    await archive.close()
    throw e
  }
}
