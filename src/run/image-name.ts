/**
 * How images are named in the local store, as podman names them:
 * - a name without a transport is a registry name, normalised as containers/image does
 *   (`debian:12` -> `docker.io/library/debian:12`, `localhost:5000/app` -> `localhost:5000/app:latest`);
 *   the store tags each image with that full name (image-layout.md §ref.name allows `/`, `:`, `@`);
 * - a short name (one without a registry) also matches a local image `localhost/NAME:TAG`, which
 *   is how `lading commit` names an image given a short name (podman does the same);
 * - any transport reference (`oci:DIR:TAG`, `docker-archive:FILE`, `docker://…`, …) names an image
 *   elsewhere, to be copied into the store. One not from a registry is stored as
 *   `localhost/<last path component>:<tag or latest>`.
 * Short-name search lists (registries.conf `unqualified-search-registries`) are not consulted:
 * src/transport/registry/registries-conf.ts does not read them, and docker.io is what a Docker
 * user means by a short name.
 */
import path from 'node:path'
import { LadingError } from '../errors.js'
import { dockerRepoTag, formatReference, parseReference } from '../transport/reference.js'
import type { ImageReference } from '../transport/types.js'

const TRANSPORT_PREFIX = /^(?:oci|oci-archive|docker-archive|dir):|^docker:\/\//
/** An image id (config digest) or a prefix of at least 12 hex digits of one. */
const IMAGE_ID = /^(?:sha256:)?([0-9a-f]{12,64})$/

export interface ImageName {
  /** The names to look for in the store, best first. */
  candidates: string[]
  /** Where to pull from when the store has none of them. */
  source: ImageReference
  /** The name it is stored under once pulled. */
  storeName: string
  /** A hex prefix of an image id, when the input may be one. */
  idPrefix?: string
}

/** `registry/repository:tag` or `registry/repository@digest` for a docker reference. */
export function dockerStoreName(r: Extract<ImageReference, { transport: 'docker' }>): string {
  const base = `${r.registry}/${r.repository}`
  return r.digest !== undefined ? `${base}@${r.digest}` : `${base}:${r.tag ?? 'latest'}`
}

function localName(p: string, tag: string | undefined): string {
  const base =
    path
      .basename(path.resolve(p))
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[._-]+|[._-]+$/g, '') || 'image'
  return `localhost/${base}:${tag ?? 'latest'}`
}

/** Parse what a user typed where an image is named. USAGE for a malformed name. */
export function parseImageName(input: string): ImageName {
  if (input === '') throw new LadingError('USAGE', 'an image name is required')
  if (TRANSPORT_PREFIX.test(input)) {
    const source = parseReference(input)
    let storeName: string
    switch (source.transport) {
      case 'docker':
        storeName = dockerStoreName(source)
        break
      case 'oci':
        storeName = localName(source.dir, source.tag)
        break
      case 'oci-archive':
        storeName = localName(source.file, source.tag)
        break
      case 'docker-archive': {
        storeName = source.name !== undefined ? dockerRepoTag(source.name, source.tag ?? 'latest') : localName(source.file, undefined)
        break
      }
      case 'dir':
        storeName = localName(source.dir, undefined)
        break
    }
    return { candidates: [storeName], source, storeName }
  }
  const source = parseReference(`docker://${input}`)
  if (source.transport !== 'docker') throw new LadingError('USAGE', `invalid image name ${JSON.stringify(input)}`)
  const full = dockerStoreName(source)
  const candidates = [full]
  const first = input.split('/')[0]!
  const qualified = input.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')
  if (!qualified) {
    const repo = source.repository.startsWith('library/') && !input.startsWith('library/') ? source.repository.slice('library/'.length) : source.repository
    candidates.push(dockerStoreName({ ...source, registry: 'localhost', repository: repo }))
  }
  const id = IMAGE_ID.exec(input)
  return { candidates, source, storeName: full, ...(id ? { idPrefix: id[1]! } : {}) }
}

/** The name an image gets when a user names a new one (commit, tag): short names are local. */
export function newImageName(input: string): string {
  if (TRANSPORT_PREFIX.test(input))
    throw new LadingError(
      'USAGE',
      `${JSON.stringify(input)}: name the new image without a transport (it is stored locally; use lading push to send it elsewhere)`,
    )
  const n = parseImageName(input)
  return n.candidates.length > 1 ? n.candidates[1]! : n.storeName
}

/** For messages: how the user would type the reference back. */
export function describeSource(r: ImageReference): string {
  return formatReference(r)
}
