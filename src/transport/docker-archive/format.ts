/**
 * The `docker save` archive format (Docker's image/spec v1.2 "combined image JSON + filesystem
 * changeset" tarball, as containers/image docker/internal/tarfile reads and writes it):
 *
 *   manifest.json   [{ "Config": "<hex>.json", "RepoTags": ["name:tag"], "Layers": ["<x>/layer.tar", ...] }]
 *   repositories    { "name": { "tag": "<top layer id>" } }              (legacy, optional)
 *   <hex>.json      the image config
 *   <id>/layer.tar  uncompressed layers (legacy); Docker >= 25 also writes an OCI layout
 *                   (oci-layout, index.json, blobs/sha256/<hex>) and points Layers at blobs/.
 */
import { LadingError } from '../../errors.js'
import { parseJson } from '../../spec/parse.js'

export interface ArchiveManifestItem {
  Config: string
  RepoTags: string[]
  Layers: string[]
}

/** Parse manifest.json strictly enough that every later lookup is by a plain string. */
export function parseArchiveManifest(bytes: Uint8Array, source: string): ArchiveManifestItem[] {
  const v = parseJson(bytes, source)
  if (!Array.isArray(v)) throw new LadingError('INVALID_DOCUMENT', `${source}: /: expected an array of images`)
  return v.map((item: unknown, i): ArchiveManifestItem => {
    const at = `${source}: /${i}`
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new LadingError('INVALID_DOCUMENT', `${at}: expected an object`)
    const o = item as Record<string, unknown>
    if (typeof o.Config !== 'string' || o.Config === '') throw new LadingError('INVALID_DOCUMENT', `${at}/Config: expected a file name`)
    const tags = o.RepoTags ?? []
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string'))
      throw new LadingError('INVALID_DOCUMENT', `${at}/RepoTags: expected an array of strings`)
    if (!Array.isArray(o.Layers) || !o.Layers.every((t) => typeof t === 'string' && t !== ''))
      throw new LadingError('INVALID_DOCUMENT', `${at}/Layers: expected an array of file names`)
    return { Config: o.Config, RepoTags: tags as string[], Layers: o.Layers as string[] }
  })
}
