/**
 * The distribution-spec v1.1 client: one registry, any of its repositories; the verb-shaped
 * API (manifests, blobs, uploads, mounts, tags, referrers, deletes) over a RegistryConnection
 * (connection.ts: HTTP, TLS, auth, retries).
 *
 * Contracts:
 * - Every manifest returned is verified: against the digest it was asked for, or against the
 *   registry's Docker-Content-Digest when fetched by tag (spec §Pulling manifests), and capped
 *   at 4 MiB before parsing.
 * - Every blob stream is a VerifyingStream: it errors before it ends unless size and digest
 *   match; an interrupted body is resumed with a Range request from the bytes received, into
 *   the same VerifyingStream (spec §Pulling blobs: registries SHOULD support Range).
 * - Uploads send the final `PUT ?digest=` only after the whole stream verified, so a blob that
 *   fails verification is never committed; the upload session is cancelled.
 * - Names, tags and digests are validated before they are put into a URL.
 */
import type { Readable } from 'node:stream'
import { LadingError, isLadingError } from '../../errors.js'
import { digestAlgorithm, digestHex, digestOf, isDigest, parseDigest, verifyBytes, type Digest, type Expected } from '../../digest/index.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../../io/limits.js'
import { MediaType } from '../../spec/media-types.js'
import { sniffManifestMediaType } from '../../spec/parse.js'
import { referrerOf } from '../../spec/referrer.js'
import type { Descriptor, RawManifest } from '../../spec/types.js'
import { isValidRepository } from '../docker-reference.js'
import { sanitize } from './registry-error.js'
import { RegistryConnection, baseMediaType, deleteScope, drain, header, pullScope, pushScope, readBody, type RegistryClientOptions } from './connection.js'
import type { UploadResult } from './blob-upload.js'

export { mergeScopes, proxySettings, type RegistryOptions, type RegistryClientOptions } from './connection.js'
export type { UploadResult } from './blob-upload.js'

/** Manifest types we accept, in preference order (content-negotiation.md: multi-platform first). */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest] as const

const MAX_TAG_PAGES = 10_000

/** Parse an RFC 8288 Link header and return the `rel="next"` target, if any. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*(.*)$/.exec(part)
    if (m && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/i.test(m[2]!)) return m[1]
  }
  return undefined
}

export class RegistryClient {
  readonly registry: string
  readonly #conn: RegistryConnection
  readonly #chunkSize: number | undefined

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry
    this.#conn = new RegistryConnection(opts)
    this.#chunkSize = opts.chunkSize === undefined ? undefined : Math.max(1, Math.floor(opts.chunkSize))
  }

  /** Open the connection and learn the auth challenge in the background (RegistryConnection.warmUp). */
  warmUp(): void {
    this.#conn.warmUp()
  }

  /** Check the credentials against the registry (see RegistryConnection.checkLogin). */
  checkLogin(): Promise<void> {
    return this.#conn.checkLogin()
  }

  /** GET a manifest or index by tag or digest, verified (see class comment). */
  async getManifest(repo: string, reference: string): Promise<RawManifest> {
    checkRepo(repo)
    checkReference(reference)
    const what = `${this.#conn.display(repo)}: GET manifest ${reference}`
    // Redirects followed (send(): GET and HEAD), as for blobs: a registry behind a CDN or proxy.
    const { res, bytes } = await this.#conn.sendForBody(
      {
        method: 'GET',
        url: `/v2/${repo}/manifests/${encodeURIComponent(reference)}`,
        headers: { accept: MANIFEST_ACCEPT.join(', ') },
        scopes: [pullScope(repo)],
        what,
        ok: [200],
      },
      DEFAULT_MAX_DOCUMENT_BYTES,
    )
    const name = `manifest ${reference} of ${this.#conn.display(repo)}`
    let digest: Digest
    if (isDigest(reference)) {
      digest = verifyBytes(bytes, { digest: reference, name })
    } else {
      const dcd = header(res.headers, 'docker-content-digest')
      if (dcd !== undefined) {
        const claimed = parseDigestHeader(dcd, what)
        digest = verifyBytes(bytes, { digest: claimed, name })
      } else {
        digest = digestOf(bytes)
      }
    }
    const { mediaType: sniffed, declared: hasDeclared } = sniffManifestMediaType(bytes, name)
    const declared = hasDeclared ? sniffed : undefined
    const ct = baseMediaType(header(res.headers, 'content-type'))
    const generic = !ct || ct === 'application/json' || ct === 'application/octet-stream' || ct === 'text/plain'
    // §Pulling manifests: reject when the body's mediaType field disagrees with Content-Type.
    // Without the field (it is optional in OCI documents), a specific Content-Type decides.
    if (declared !== undefined && !generic && ct !== declared) {
      throw new LadingError('INVALID_MANIFEST', `${name}: Content-Type ${ct} does not match the document's mediaType ${declared}`)
    }
    const bodyType = declared ?? (generic ? sniffed : ct!)
    if (bodyType === MediaType.DockerManifestV1 || bodyType === MediaType.DockerManifestV1Signed) {
      throw new LadingError('UNSUPPORTED', `${name}: Docker schema 1 manifests are not supported`)
    }
    return { bytes, mediaType: bodyType, digest }
  }

  /** HEAD a manifest: its descriptor, or undefined when the registry does not have it. */
  async headManifest(repo: string, reference: string): Promise<{ digest: Digest; size?: number; mediaType?: string } | undefined> {
    checkRepo(repo)
    checkReference(reference)
    const what = `${this.#conn.display(repo)}: HEAD manifest ${reference}`
    const res = await this.#conn.send({
      method: 'HEAD',
      url: `/v2/${repo}/manifests/${encodeURIComponent(reference)}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scopes: [pullScope(repo)],
      what,
      ok: [200, 404],
    })
    await drain(res)
    if (res.statusCode === 404) return undefined
    const dcd = header(res.headers, 'docker-content-digest')
    let digest: Digest
    if (dcd !== undefined) digest = parseDigestHeader(dcd, what)
    else if (isDigest(reference)) digest = reference
    else return this.#descOf(await this.getManifest(repo, reference)) // no digest header: fetch and hash
    if (isDigest(reference) && digest !== reference) throw new LadingError('DIGEST_MISMATCH', `${what}: registry reports ${digest}`)
    const cl = header(res.headers, 'content-length')
    const mediaType = baseMediaType(header(res.headers, 'content-type'))
    return { digest, ...(cl !== undefined ? { size: Number(cl) } : {}), ...(mediaType ? { mediaType } : {}) }
  }

  #descOf(raw: RawManifest): { digest: Digest; size: number; mediaType: string } {
    return { digest: raw.digest, size: raw.bytes.length, mediaType: raw.mediaType }
  }

  /**
   * PUT a manifest under a tag or its digest with Content-Type set to its media type
   * (§Pushing Manifests). When it has a `subject` and the registry did not answer with
   * OCI-Subject, the referrers tag schema index is updated (§Pushing Manifests with Subject).
   */
  async putManifest(repo: string, reference: string, raw: RawManifest): Promise<Descriptor> {
    checkRepo(repo)
    checkReference(reference)
    const what = `${this.#conn.display(repo)}: PUT manifest ${reference}`
    verifyBytes(raw.bytes, { digest: raw.digest, name: what })
    if (isDigest(reference) && reference !== raw.digest) throw new LadingError('DIGEST_MISMATCH', `${what}: the manifest's digest is ${raw.digest}`)
    const res = await this.#conn.send({
      method: 'PUT',
      url: `/v2/${repo}/manifests/${encodeURIComponent(reference)}`,
      headers: { 'content-type': raw.mediaType },
      body: raw.bytes,
      scopes: [pushScope(repo)],
      what,
      ok: [200, 201, 202],
    })
    await drain(res)
    const dcd = header(res.headers, 'docker-content-digest')
    if (dcd !== undefined && dcd !== raw.digest && digestAlgorithm(parseDigestHeader(dcd, what)) === digestAlgorithm(raw.digest)) {
      throw new LadingError('DIGEST_MISMATCH', `${what}: registry stored ${dcd}, expected ${raw.digest}`)
    }
    const desc: Descriptor = { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length }
    const subject = subjectOf(raw)
    if (subject && header(res.headers, 'oci-subject') === undefined) await this.#addToReferrersTag(repo, subject, raw, desc)
    return desc
  }

  async #addToReferrersTag(repo: string, subject: Digest, raw: RawManifest, desc: Descriptor): Promise<void> {
    const tag = referrersTag(subject)
    const index = await this.#readReferrersTag(repo, tag, true)
    if (index.manifests.some((m) => m.digest === desc.digest)) return
    const entry: Descriptor = referrerOf(raw.bytes, desc)?.descriptor ?? { ...desc }
    const next = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...index.manifests, entry] }
    const bytes = Buffer.from(JSON.stringify(next))
    await this.putManifest(repo, tag, { bytes, mediaType: MediaType.OciIndex, digest: digestOf(bytes) })
  }

  /** The referrers tag schema index; `strict` refuses a tag that holds something else. */
  async #readReferrersTag(repo: string, tag: string, strict: boolean): Promise<{ manifests: Descriptor[] }> {
    let raw: RawManifest
    try {
      raw = await this.getManifest(repo, tag)
    } catch (e) {
      if (isLadingError(e, 'MANIFEST_UNKNOWN') || isLadingError(e, 'NOT_FOUND') || isLadingError(e, 'NAME_UNKNOWN')) return { manifests: [] }
      if (!strict && isLadingError(e)) return { manifests: [] }
      throw e
    }
    const parsed = parseReferrersIndex(raw.bytes)
    if (!parsed || raw.mediaType !== MediaType.OciIndex) {
      if (strict) throw new LadingError('CONFLICT', `${this.#conn.display(repo)}: tag ${tag} (referrers tag schema) holds ${raw.mediaType}, not an OCI index`)
      return { manifests: [] }
    }
    return parsed
  }

  /**
   * DELETE a manifest by digest (§Deleting Manifests) or a tag (§Deleting tags). A deleted
   * manifest with a `subject` is also taken out of the referrers tag schema index when the
   * registry has no referrers API (§Deleting Manifests: clients SHOULD).
   */
  async deleteManifest(repo: string, reference: string): Promise<void> {
    checkRepo(repo)
    checkReference(reference)
    const kind = isDigest(reference) ? 'manifest' : 'tag'
    let subject: Digest | undefined
    if (isDigest(reference)) {
      // Unreadable or absent: the DELETE below reports that in its own words.
      try {
        subject = subjectOf(await this.getManifest(repo, reference))
      } catch {
        subject = undefined
      }
    }
    const what = `${this.#conn.display(repo)}: DELETE ${kind} ${reference}`
    const res = await this.#conn.send({
      method: 'DELETE',
      url: `/v2/${repo}/manifests/${encodeURIComponent(reference)}`,
      scopes: [pullScope(repo), deleteScope(repo)],
      what,
      ok: [200, 202],
    })
    await drain(res)
    if (subject && !(await this.#hasReferrersApi(repo, subject))) {
      const tag = referrersTag(subject)
      try {
        const index = await this.#readReferrersTag(repo, tag, false)
        const kept = index.manifests.filter((m) => m.digest !== reference)
        if (kept.length !== index.manifests.length) {
          const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: kept }))
          await this.putManifest(repo, tag, { bytes, mediaType: MediaType.OciIndex, digest: digestOf(bytes) })
        }
      } catch (e) {
        throw new LadingError(
          isLadingError(e) ? e.code : 'REGISTRY_ERROR',
          `${what}: deleted, but updating the referrers tag ${tag} failed: ${(e as Error).message}`,
          { cause: e },
        )
      }
    }
  }

  /** Does the registry implement GET /v2/<name>/referrers/<digest> (200, not 404)? */
  async #hasReferrersApi(repo: string, digest: Digest): Promise<boolean> {
    const res = await this.#conn.send({
      method: 'GET',
      url: `/v2/${repo}/referrers/${digest}`,
      headers: { accept: MediaType.OciIndex },
      scopes: [pullScope(repo)],
      what: `${this.#conn.display(repo)}: GET referrers ${digest}`,
      ok: [200, 404],
    })
    await drain(res)
    return res.statusCode === 200
  }

  /** HEAD a blob: its size when present, undefined when absent (§Checking if content exists). */
  async blobSize(repo: string, digest: Digest): Promise<number | undefined> {
    checkRepo(repo)
    parseDigest(digest)
    const res = await this.#conn.send({
      method: 'HEAD',
      url: `/v2/${repo}/blobs/${digest}`,
      scopes: [pullScope(repo)],
      what: `${this.#conn.display(repo)}: HEAD blob ${digest}`,
      ok: [200, 404],
      followRedirects: true,
    })
    await drain(res)
    if (res.statusCode === 404) return undefined
    const cl = header(res.headers, 'content-length')
    return cl === undefined ? -1 : Number(cl)
  }

  /**
   * A verifying stream of a blob (blob-download.ts): errors before it ends unless size and
   * digest match; interrupted bodies resume with a Range request.
   */
  async getBlob(repo: string, desc: { digest: Digest; size?: number }): Promise<Readable> {
    checkRepo(repo)
    parseDigest(desc.digest)
    // Loaded on first use, like the upload code: a pull never loads the push side, nor a push the pull side.
    const { downloadBlob } = await import('./blob-download.js')
    return downloadBlob(this.#conn, repo, desc)
  }

  /**
   * Upload a blob (blob-upload.ts): verified while read, committed by the closing
   * `PUT ?digest=` only once the whole stream verified; nothing is stored on failure. A large
   * blob is streamed in one PATCH (unless the client has a `chunkSize`); `reopen` lets a
   * transient failure of that PATCH start the upload over from a fresh stream.
   */
  async putBlob(repo: string, body: Readable, expected: Expected = {}, opts: { reopen?: () => Promise<Readable> } = {}): Promise<UploadResult> {
    try {
      checkRepo(repo)
    } catch (e) {
      body.destroy()
      throw e
    }
    let uploadBlob: typeof import('./blob-upload.js').uploadBlob
    try {
      ;({ uploadBlob } = await import('./blob-upload.js'))
    } catch (e) {
      body.destroy()
      throw e
    }
    return uploadBlob(this.#conn, repo, body, expected, {
      ...(this.#chunkSize !== undefined ? { chunkSize: this.#chunkSize } : {}),
      ...(opts.reopen ? { reopen: opts.reopen } : {}),
    })
  }

  /**
   * Cross-repository mount (§Mounting a blob from another repository). true when mounted
   * (201); false when the registry started an upload instead (202), which we cancel.
   */
  async mountBlob(repo: string, digest: Digest, from: string): Promise<boolean> {
    checkRepo(repo)
    checkRepo(from)
    parseDigest(digest)
    const what = `${this.#conn.display(repo)}: mount blob ${digest} from ${from}`
    const res = await this.#conn.send({
      method: 'POST',
      url: `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
      headers: { 'content-length': '0' },
      scopes: [pushScope(repo), pullScope(from)],
      what,
      ok: [201, 202],
    })
    await drain(res)
    if (res.statusCode === 201) return true
    const location = header(res.headers, 'location')
    if (location)
      await (
        await import('./blob-upload.js')
      ).cancelUpload(this.#conn, repo, new URL(location, await this.#conn.resolve(`/v2/${repo}/blobs/uploads/`)).toString())
    return false
  }

  /**
   * All tags (§Listing Tags), following `Link: <...>; rel="next"`; with `pageSize`, asks for
   * `n` per page and, when a registry gives no Link, continues with `last=` until a short page.
   */
  async listTags(repo: string, opts: { pageSize?: number } = {}): Promise<string[]> {
    checkRepo(repo)
    const tags: string[] = []
    const seen = new Set<string>()
    let url = `/v2/${repo}/tags/list${opts.pageSize ? `?n=${opts.pageSize}` : ''}`
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const what = `${this.#conn.display(repo)}: GET tags list`
      const { res, bytes } = await this.#conn.sendForBody({ method: 'GET', url, scopes: [pullScope(repo)], what, ok: [200] }, DEFAULT_MAX_DOCUMENT_BYTES)
      let v: { tags?: unknown }
      try {
        v = JSON.parse(bytes.toString('utf8'))
      } catch (e) {
        throw new LadingError('INVALID_JSON', `${what}: response is not JSON`, { cause: e })
      }
      const pageTags = v.tags ?? []
      if (!Array.isArray(pageTags) || !pageTags.every((t) => typeof t === 'string'))
        throw new LadingError('INVALID_DOCUMENT', `${what}: /tags: expected an array of strings`)
      let added = 0
      for (const t of pageTags as string[])
        if (!seen.has(t)) {
          seen.add(t)
          tags.push(t)
          added++
        }
      const link = nextLink(header(res.headers, 'link'))
      if (link) {
        const next = new URL(link, await this.#conn.resolve(url)).toString()
        if (added === 0 && pageTags.length > 0) break // a registry looping on the same page
        url = next
        continue
      }
      // No Link: a full page may mean more (older registries paginate by `last` alone); a page
      // longer than `n` means the registry ignored `n` (distribution 2.8 does) and sent all.
      if (opts.pageSize && pageTags.length === opts.pageSize && added > 0) {
        url = `/v2/${repo}/tags/list?n=${opts.pageSize}&last=${encodeURIComponent(tags[tags.length - 1]!)}`
        continue
      }
      return tags
    }
    return tags
  }

  /**
   * Manifests that refer to `digest` (§Listing Referrers), following Link pages; when the
   * registry lacks the API (404), the referrers tag schema (§Referrers Tag Schema), and no
   * referrers when that tag is absent or not an index.
   */
  async listReferrers(repo: string, digest: Digest, artifactType?: string): Promise<Descriptor[]> {
    checkRepo(repo)
    parseDigest(digest)
    const what = `${this.#conn.display(repo)}: GET referrers ${digest}`
    let url = `/v2/${repo}/referrers/${digest}${artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : ''}`
    const out: Descriptor[] = []
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const res = await this.#conn.send({ method: 'GET', url, headers: { accept: MediaType.OciIndex }, scopes: [pullScope(repo)], what, ok: [200, 404] })
      if (res.statusCode === 404) {
        await drain(res)
        if (page > 0) break
        const index = await this.#readReferrersTag(repo, referrersTag(digest), false)
        return artifactType ? index.manifests.filter((m) => m.artifactType === artifactType) : index.manifests
      }
      const parsed = parseReferrersIndex(await readBody(res, DEFAULT_MAX_DOCUMENT_BYTES, what))
      if (!parsed) throw new LadingError('INVALID_INDEX', `${what}: response is not an image index`)
      out.push(...parsed.manifests)
      const link = nextLink(header(res.headers, 'link'))
      if (!link) break
      url = new URL(link, await this.#conn.resolve(url)).toString()
    }
    return artifactType ? out.filter((m) => m.artifactType === artifactType) : out
  }

  async close(): Promise<void> {
    await this.#conn.close()
  }
}

/**
 * Names and references are checked before they are put into a URL path (distribution-spec
 * §Pulling manifests grammars), so a caller's `../` or `?` can never reach another endpoint.
 */
function checkRepo(repo: string): void {
  if (!isValidRepository(repo)) throw new LadingError('INVALID_REFERENCE', `invalid repository name ${JSON.stringify(sanitize(repo, 300))}`)
}

const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/

function checkReference(reference: string): void {
  if (TAG_RE.test(reference)) return
  try {
    parseDigest(reference)
  } catch (e) {
    throw new LadingError('INVALID_REFERENCE', `invalid tag or digest ${JSON.stringify(sanitize(reference, 200))}`, { cause: e })
  }
}

/** distribution-spec §Referrers Tag Schema: `<alg>-<ref>`, the encoded part cut to 64 characters. */
export function referrersTag(d: Digest): string {
  return `${digestAlgorithm(d)}-${digestHex(d).slice(0, 64)}`
}

function parseDigestHeader(v: string, what: string): Digest {
  try {
    return parseDigest(v.trim())
  } catch (e) {
    throw new LadingError('REGISTRY_ERROR', `${what}: invalid Docker-Content-Digest ${JSON.stringify(sanitize(v, 140))}`, { cause: e })
  }
}

function subjectOf(raw: RawManifest): Digest | undefined {
  return referrerOf(raw.bytes, { digest: raw.digest, size: raw.bytes.length, mediaType: raw.mediaType })?.subject
}

/** Lenient read of a referrers index: descriptors with a valid digest, size and media type. */
function parseReferrersIndex(bytes: Uint8Array): { manifests: Descriptor[] } | undefined {
  let v: unknown
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    return undefined
  }
  const ms = (v as { manifests?: unknown } | null)?.manifests
  if (!Array.isArray(ms)) return undefined
  const out: Descriptor[] = []
  for (const m of ms) {
    const d = m as Partial<Descriptor> | null
    if (!d || typeof d.mediaType !== 'string' || !isDigest(d.digest) || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) continue
    out.push(d as Descriptor)
  }
  return { manifests: out }
}
