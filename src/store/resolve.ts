/**
 * Resolving a reference in a layout to one image: by tag (index.json ref.name, image-layout.md
 * §index.json) or by digest, then down through nested indexes (OCI image-index.md and Docker
 * manifest lists) choosing a platform, to a manifest and its config.
 *
 * Platform rules:
 * - `platform` undefined means "the host's, if there is a choice": a tag naming a single
 *   manifest resolves to it whatever its platform (like umoci, which has no platform notion).
 * - An explicit Platform must match: an index entry's `platform`, or for a lone manifest or an
 *   entry without `platform`, the config's os/architecture/variant (config.md §Properties).
 * - 'any' takes the only image, or the first one that is not an attestation/unknown platform.
 * - No match is PLATFORM_NOT_FOUND naming the platforms available.
 */
import { isDigest, type Digest } from '../digest/digest.js'
import { LadingError, quoteName } from '../errors.js'
import { checkIndexDepth } from '../io/limits.js'
import { isConfigMediaType, isIndexMediaType, isManifestMediaType } from '../spec/media-types.js'
import { parseConfig, parseIndex, parseManifest } from '../spec/parse.js'
import { formatPlatform, hostPlatform, platformMatches } from '../spec/platform.js'
import type { Descriptor, ImageConfig, Manifest, Platform } from '../spec/types.js'
import type { BlobReader } from './blob-store.js'
import type { Layout } from './layout.js'

export interface ResolvedImage {
  /** Where the image's blobs are read (verified) from: unpacking streams the layers from here. */
  blobs: BlobReader
  /** Descriptors from index.json down to the manifest (index entries first, manifest last). */
  path: Descriptor[]
  manifestDescriptor: Descriptor
  manifest: Manifest
  manifestBytes: Buffer
  config: ImageConfig
  configBytes: Buffer
}

export type PlatformChoice = Platform | 'any'

/**
 * Which image of a layout: a tag ('latest', 'v1') or a digest ('sha256:…') as one string (a tag
 * can never look like a digest: image-layout.md's ref.name grammar has no ':' in a tag, and a
 * string that parses as a digest is taken as one), or the explicit `{ tag }` / `{ digest }`.
 * The one argument style of every library function that names an image in a store.
 */
export type ImageSelector = string | { tag: string; digest?: undefined } | { digest: Digest; tag?: undefined }

/** The selector as a tag or a digest (an empty object selects 'latest', as the CLI's DIR does). */
export function selectorParts(selector: ImageSelector | { tag?: string | undefined; digest?: Digest | undefined }): { tag?: string; digest?: Digest } {
  if (typeof selector === 'string') return isDigest(selector) ? { digest: selector } : { tag: selector }
  if (selector.digest !== undefined) return { digest: selector.digest }
  return { tag: selector.tag ?? 'latest' }
}

/**
 * The image `selector` names in `layout`; descends nested indexes choosing `platform` (default
 * hostPlatform(); 'any' = the only/first image).
 */
export async function resolveImage(layout: Layout, selector: ImageSelector, platform?: PlatformChoice): Promise<ResolvedImage> {
  const ref = selectorParts(selector)
  const label = ref.digest ? `${layout.dir}@${ref.digest}` : `${layout.dir}:${ref.tag ?? 'latest'}`
  let candidates: Descriptor[]
  if (ref.digest !== undefined) {
    candidates = [await descriptorForDigest(layout, ref.digest)]
  } else {
    const tag = ref.tag ?? 'latest'
    candidates = await layout.tagEntries(tag)
    if (candidates.length === 0)
      throw layout.tagNotFound(
        tag,
        (await layout.listTags()).map((t) => t.tag),
      )
  }
  const r = new Resolver(layout, label, platform)
  return candidates.length === 1 ? r.descend(candidates[0]!, [], 0, false) : r.choose(candidates, [], 0)
}

/**
 * The descriptor of a blob named by digest: index.json's entry when it has one (it carries
 * the media type), else built from the blob, its media type read from the document.
 */
export async function descriptorForDigest(layout: Layout, digest: Digest): Promise<Descriptor> {
  const index = await layout.readIndex()
  const entry = index.manifests.find((d) => d.digest === digest)
  if (entry) return entry
  const size = await layout.blobSize(digest)
  if (size === undefined) throw new LadingError('BLOB_UNKNOWN', `blob ${digest} not found in layout ${layout.dir}`)
  const raw = await layout.getManifest({ digest, size })
  return { mediaType: raw.mediaType, digest, size }
}

class Resolver {
  readonly #layout: Layout
  readonly #label: string
  readonly #want: PlatformChoice | undefined
  /**
   * Nested indexes (by digest) already searched without a match, with the platforms they offer:
   * an index graph repeating its children is searched once per digest, not once per path.
   */
  readonly #searched = new Map<string, string[]>()

  constructor(layout: Layout, label: string, want: PlatformChoice | undefined) {
    this.#layout = layout
    this.#label = label
    this.#want = want
  }

  /** Follow one descriptor. `chosen` is true when it was picked by platform among several. */
  async descend(desc: Descriptor, path: Descriptor[], depth: number, chosen: boolean): Promise<ResolvedImage> {
    checkIndexDepth(depth, this.#label)
    const raw = await this.#layout.getManifest(desc)
    const mediaType = desc.mediaType ?? raw.mediaType
    const source = `blob ${desc.digest}`
    if (isIndexMediaType(mediaType)) {
      const index = parseIndex(raw.bytes, source, mediaType)
      return this.choose(index.manifests, [...path, desc], depth + 1)
    }
    if (!isManifestMediaType(mediaType)) {
      throw new LadingError('UNSUPPORTED', `${this.#label}: ${source} has media type ${quoteName(mediaType)}, which is neither an image manifest nor an index`)
    }
    const manifest = parseManifest(raw.bytes, source, mediaType)
    if (!isConfigMediaType(manifest.config.mediaType)) {
      throw new LadingError(
        'UNSUPPORTED',
        `${this.#label}: manifest ${desc.digest} is not a container image (config media type ${quoteName(manifest.config.mediaType)}; an artifact?)`,
      )
    }
    const configBytes = await this.#layout.readBlob(manifest.config)
    const config = parseConfig(configBytes, `blob ${manifest.config.digest} (config)`)
    const want = this.#want
    // An explicit platform must match even a lone manifest; one picked from an index already did.
    if (want !== undefined && want !== 'any' && !chosen && !platformMatches(want, configPlatform(config))) {
      throw new PlatformNotFound(this.#label, want, [formatPlatform(configPlatform(config))])
    }
    return { blobs: this.#layout.blobs, path: [...path, desc], manifestDescriptor: desc, manifest, manifestBytes: raw.bytes, config, configBytes }
  }

  /** Pick among index entries (or several index.json entries with one tag) by platform. */
  async choose(entries: readonly Descriptor[], path: Descriptor[], depth: number): Promise<ResolvedImage> {
    const usable = entries.filter((d) => isIndexMediaType(d.mediaType) || isManifestMediaType(d.mediaType))
    const want = this.#want
    if (usable.length === 0) {
      if (want === 'any') throw new LadingError('PLATFORM_NOT_FOUND', `${this.#label}: the index lists no image manifests`)
      throw new PlatformNotFound(this.#label, want ?? hostPlatform(), [])
    }
    if (want === 'any') {
      const real = usable.filter((d) => !isAttestation(d))
      return this.descend(real[0] ?? usable[0]!, path, depth, true)
    }
    const target = want ?? hostPlatform()
    const available = new Set<string>()
    const tried = new Set<string>()
    for (const d of usable) {
      if (isAttestation(d)) continue
      // The same entry listed again cannot match where it did not before.
      const key = JSON.stringify([d.digest, d.mediaType, d.platform ?? null])
      if (tried.has(key)) continue
      tried.add(key)
      if (d.platform) {
        if (platformMatches(target, d.platform)) return this.descend(d, path, depth, true)
        available.add(formatPlatform(d.platform))
        continue
      }
      // No platform on the entry: a nested index is searched; a manifest is judged by its config.
      if (isIndexMediaType(d.mediaType)) {
        const before = this.#searched.get(d.digest)
        if (before) {
          for (const p of before) available.add(p)
          continue
        }
        try {
          return await this.descend(d, path, depth, true)
        } catch (e) {
          if (e instanceof PlatformNotFound) {
            this.#searched.set(d.digest, e.available)
            for (const p of e.available) available.add(p)
            continue
          }
          throw e
        }
      }
      const image = await this.descend(d, path, depth, true)
      const p = configPlatform(image.config)
      if (platformMatches(target, p)) return image
      available.add(formatPlatform(p))
    }
    throw new PlatformNotFound(this.#label, target, [...available])
  }
}

/** The platform an image config declares (config.md §Properties: architecture, os, variant, os.version). */
export function configPlatform(c: ImageConfig): Platform {
  const p: Platform = { architecture: c.architecture, os: c.os }
  if (typeof c.variant === 'string') p.variant = c.variant
  if (typeof c['os.version'] === 'string') p['os.version'] = c['os.version']
  return p
}

/** Docker buildx attaches provenance as extra manifests marked unknown/unknown. */
function isAttestation(d: Descriptor): boolean {
  return d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' || (d.platform?.os === 'unknown' && d.platform.architecture === 'unknown')
}

/** PLATFORM_NOT_FOUND that also carries the platforms seen, so an outer index can list them. */
class PlatformNotFound extends LadingError {
  readonly available: string[]
  constructor(label: string, want: Platform, available: string[]) {
    const list = available.length > 0 ? [...new Set(available)].join(', ') : 'none'
    super('PLATFORM_NOT_FOUND', `${label}: no image for ${formatPlatform(want)}; available: ${list}`)
    this.available = available
  }
}
