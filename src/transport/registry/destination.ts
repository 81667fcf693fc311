/**
 * `docker://registry/repo[:tag]` as an ImageDestination. Blobs are committed by the registry
 * only after the client's closing `PUT ?digest=`, which is sent once the stream verified, so
 * a failed putBlob leaves nothing behind; manifests are visible as soon as their PUT returns.
 */
import type { Readable } from 'node:stream'
import type { Descriptor, RawManifest } from '../../spec/types.js'
import { REGISTRY_CAPABILITIES } from '../capabilities.js'
import type { DockerReference, ImageDestination, PutBlobOptions } from '../types.js'
import { RegistryClient, type RegistryOptions } from './client.js'

const CAPABILITIES = REGISTRY_CAPABILITIES

export class RegistryDestination implements ImageDestination {
  readonly ref: DockerReference
  readonly capabilities = CAPABILITIES
  readonly client: RegistryClient
  readonly #ownsClient: boolean

  constructor(ref: DockerReference, opts: RegistryOptions = {}, client?: RegistryClient) {
    this.ref = ref
    this.client = client ?? new RegistryClient({ ...opts, registry: ref.registry })
    this.#ownsClient = client === undefined
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    const size = await this.client.blobSize(this.ref.repository, desc.digest)
    // A registry that answers HEAD without Content-Length (-1) still has the blob.
    return size !== undefined && (size < 0 || desc.size === undefined || size === desc.size)
  }

  async putBlob(body: Readable, expected: Partial<Descriptor> = {}, opts: PutBlobOptions = {}): Promise<Descriptor> {
    const r = await this.client.putBlob(
      this.ref.repository,
      body,
      {
        digest: expected.digest,
        size: expected.size,
        name: expected.digest ? `blob ${expected.digest}` : undefined,
      },
      opts,
    )
    return { mediaType: expected.mediaType ?? 'application/octet-stream', digest: r.digest, size: r.size }
  }

  mountBlob(desc: Descriptor, fromRepository: string): Promise<boolean> {
    return this.client.mountBlob(this.ref.repository, desc.digest, fromRepository)
  }

  /** PUT under `tag` when given, else under the manifest's digest. */
  putManifest(raw: RawManifest, tag?: string): Promise<Descriptor> {
    return this.client.putManifest(this.ref.repository, tag ?? raw.digest, raw)
  }

  /** Nothing to do: each PUT the registry acknowledged is already durable and visible. */
  async commit(): Promise<void> {}

  /** `await using`: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async close(): Promise<void> {
    if (this.#ownsClient) await this.client.close()
  }
}

/** Open the endpoint: the connection and the auth challenge are set up in the background while the caller gets on. */
export async function registryDestination(ref: DockerReference, opts: RegistryOptions = {}): Promise<RegistryDestination> {
  const r = new RegistryDestination(ref, opts)
  r.client.warmUp()
  // The upload code is loaded on first use; start loading it now, while the connection opens.
  import('./blob-upload.js').catch(() => {
    /* the first upload reports it */
  })
  return r
}
