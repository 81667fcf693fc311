/**
 * A docker:// source with registries.conf pull mirrors (./registries-conf.ts): the mirrors are
 * tried in order, then the registry itself, and the first one that serves the image's manifest
 * serves everything else of the copy (blobs, child manifests, referrers), as containers/image
 * does. A mirror that fails (unreachable, the image missing, refused) is reported in the error
 * only if every endpoint fails.
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../../digest/digest.js'
import { LadingError, isLadingError } from '../../errors.js'
import type { Descriptor, RawManifest } from '../../spec/types.js'
import { displayReference } from '../reference.js'
import type { DockerReference, ImageSource } from '../types.js'
import type { RegistryOptions } from './connection.js'
import { endpointOptions, type Endpoint } from '../registries-conf.js'
import { RegistrySource, registrySource } from './source.js'

export class MirroredSource implements ImageSource {
  /** The registry's own location (what a cross-repository mount would read from). */
  readonly ref: DockerReference
  readonly #endpoints: Endpoint[]
  readonly #opts: RegistryOptions
  #chosen: Promise<{ source: RegistrySource; top: RawManifest }> | undefined
  #open: RegistrySource | undefined

  constructor(endpoints: Endpoint[], opts: RegistryOptions) {
    this.#endpoints = endpoints
    this.#opts = opts
    this.ref = endpoints[endpoints.length - 1]!.ref
  }

  #choose(): Promise<{ source: RegistrySource; top: RawManifest }> {
    this.#chosen ??= (async () => {
      const failures: string[] = []
      for (const [i, e] of this.#endpoints.entries()) {
        const source = await registrySource(e.ref, endpointOptions(this.#opts, e))
        this.#open = source
        try {
          return { source, top: await source.getManifest() }
        } catch (err) {
          await source.close()
          this.#open = undefined
          if (!isLadingError(err) || i === this.#endpoints.length - 1) {
            if (failures.length && err instanceof LadingError) {
              throw new LadingError(err.code, `${err.message} (mirrors tried first: ${failures.join('; ')})`, { cause: err })
            }
            throw err
          }
          failures.push(`${displayReference(e.ref)}: ${err.message}`)
        }
      }
      throw new LadingError('NOT_FOUND', 'no registry endpoint to pull from')
    })()
    return this.#chosen
  }

  async getManifest(digest?: Digest): Promise<RawManifest> {
    const { source, top } = await this.#choose()
    return digest === undefined ? top : source.getManifest(digest)
  }

  async getBlob(desc: Descriptor): Promise<Readable> {
    return (await this.#choose()).source.getBlob(desc)
  }

  async listReferrers(digest: Digest): Promise<Descriptor[]> {
    return (await this.#choose()).source.listReferrers(digest)
  }

  /** `await using`: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async close(): Promise<void> {
    await this.#open?.close()
  }
}
