/**
 * `docker://registry/repo[:tag|@digest]` as an ImageSource. Reads are verified by the client
 * (manifests against digests, blobs through VerifyingStream with Range resume).
 */
import type { Readable } from 'node:stream'
import { LadingError } from '../../errors.js'
import type { Digest } from '../../digest/digest.js'
import type { Descriptor, RawManifest } from '../../spec/types.js'
import { displayReference } from '../reference.js'
import type { DockerReference, ImageSource } from '../types.js'
import { RegistryClient, type RegistryOptions } from './client.js'

export class RegistrySource implements ImageSource {
  readonly ref: DockerReference
  readonly client: RegistryClient
  readonly #ownsClient: boolean

  constructor(ref: DockerReference, opts: RegistryOptions = {}, client?: RegistryClient) {
    this.ref = ref
    this.client = client ?? new RegistryClient({ ...opts, registry: ref.registry })
    this.#ownsClient = client === undefined
  }

  /** With no digest: the reference's digest, else its tag, else `latest` (as skopeo). */
  getManifest(digest?: Digest): Promise<RawManifest> {
    const reference = digest ?? this.ref.digest ?? this.ref.tag ?? 'latest'
    return this.client.getManifest(this.ref.repository, reference)
  }

  getBlob(desc: Descriptor): Promise<Readable> {
    if (desc.urls?.length && desc.mediaType === 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip') {
      throw new LadingError('UNSUPPORTED', `blob ${desc.digest} of ${this.#display()}: foreign layers (fetched from ${desc.urls[0]}) are not supported`)
    }
    return this.client.getBlob(this.ref.repository, desc)
  }

  listReferrers(digest: Digest): Promise<Descriptor[]> {
    return this.client.listReferrers(this.ref.repository, digest)
  }

  /** `await using`: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async close(): Promise<void> {
    if (this.#ownsClient) await this.client.close()
  }

  #display(): string {
    return displayReference(this.ref)
  }
}

/** Open the endpoint: the connection and the auth challenge are set up in the background while the caller gets on. */
export async function registrySource(ref: DockerReference, opts: RegistryOptions = {}): Promise<RegistrySource> {
  const r = new RegistrySource(ref, opts)
  r.client.warmUp()
  // The download code is loaded on first use; start loading it now, while the connection opens.
  import('./blob-download.js').catch(() => {
    /* the first download reports it */
  })
  return r
}
