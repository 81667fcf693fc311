/**
 * The OCI distribution-spec v1.1 API (spec.md of opencontainers/distribution-spec) over a
 * RegistryStorage: routing on Node's own http (nine path shapes; a router library would add a
 * dependency for a dozen lines of regular expressions), one spec error for every failure.
 *
 * The raw request path is matched, never a decoded one: no name, tag, digest or session id can
 * contain `%`, so an encoded `..` or `/` never matches a route, and every name is checked
 * against the grammar (src/server/names.ts) before storage sees it.
 */
import type http from 'node:http'
import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { POOL_BLOCK_SIZE, PooledFileReader, pipeReturningBlocks } from '../io/block-pool.js'
import { digestAlgorithm, digestOf, type Digest } from '../digest/digest.js'
import { LadingError } from '../errors.js'
import { DEFAULT_MAX_DOCUMENT_BYTES, readAllLimited } from '../io/limits.js'
import { MediaType, isIndexMediaType, isManifestMediaType } from '../spec/media-types.js'
import { manifestMediaType, parseIndex, parseJson, parseManifest } from '../spec/parse.js'
import { isValidTag } from '../spec/ref-name.js'
import { HttpError, toHttpError } from './errors.js'
import { checkRepositoryName, parseDigestParam, parseReference } from './names.js'
import type { RegistryStorage } from './storage.js'
import type { InFlight } from './gc.js'

export type Action = 'pull' | 'push' | 'delete'
export interface Scope {
  repository: string
  actions: Action[]
}

/** Decides whether a request may act on repositories; throws HttpError 401/403 otherwise. */
export interface Authorizer {
  /** The user behind the request (undefined: anonymous); throws 401 for bad credentials. */
  authenticate(req: http.IncomingMessage): Promise<string | undefined>
  /** Throws 401 (with a challenge naming `scopes`) or 403 unless `user` may do all of `scopes`. */
  authorize(req: http.IncomingMessage, user: string | undefined, scopes: Scope[]): void
  /** May `user` do `action` on `repository`? (no throw; for _catalog filtering and optional mounts). */
  allows(user: string | undefined, repository: string, action: Action): boolean
  /** The WWW-Authenticate challenge (a token realm is named after the request's Host). */
  challenge(scopes: Scope[], req?: http.IncomingMessage): string
}

export interface ApiOptions {
  storage: RegistryStorage
  readOnly?: boolean
  /** Mount a blob from any repository when `from` is absent (distribution-spec §Mounting a blob). */
  autoMount?: boolean
  /** OCI-Chunk-Min-Length announced on upload sessions (0: none). */
  chunkMinLength?: number
  maxManifestBytes?: number
  auth?: Authorizer
  inFlight?: InFlight
  /** The storage directory, replaced by `<root>` in error messages. */
  storageRoot?: string
}

/** What the request was, for metrics and the access log. */
export interface RequestInfo {
  route: string
  user?: string | undefined
  repository?: string | undefined
}

const API_VERSION = { 'Docker-Distribution-API-Version': 'registry/2.0' }
const CONTENT_RANGE_RE = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})$/
const MAX_LIST = 10_000

export class RegistryApi {
  readonly #o: Required<Omit<ApiOptions, 'auth' | 'inFlight' | 'storageRoot'>> & Pick<ApiOptions, 'auth' | 'inFlight' | 'storageRoot'>

  constructor(opts: ApiOptions) {
    this.#o = { readOnly: false, autoMount: true, chunkMinLength: 0, maxManifestBytes: DEFAULT_MAX_DOCUMENT_BYTES, ...opts }
  }

  /** Answer one request; never throws (every failure becomes a spec error response). */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, info: RequestInfo): Promise<void> {
    let context: 'manifest' | 'blob' | 'upload' | 'other' = 'other'
    try {
      const url = req.url ?? '/'
      const q = url.indexOf('?')
      const p = q < 0 ? url : url.slice(0, q)
      const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1))
      const method = req.method ?? 'GET'
      let m: RegExpExecArray | null
      if (p === '/v2/' || p === '/v2') {
        info.route = 'base'
        return await this.#base(req, res, info)
      }
      if (p === '/v2/_catalog') {
        info.route = 'catalog'
        return await this.#catalog(req, res, query, info)
      }
      if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(p))) {
        context = 'manifest'
        info.route = 'manifest'
        return await this.#manifest(req, res, method, this.#name(m[1]!, info), decodeSegment(m[2]!), info)
      }
      if ((m = /^\/v2\/(.+)\/blobs\/uploads\/?([^/]*)$/.exec(p))) {
        context = 'upload'
        info.route = 'upload'
        return await this.#upload(req, res, method, this.#name(m[1]!, info), decodeSegment(m[2]!), query, info)
      }
      if ((m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(p))) {
        context = 'blob'
        info.route = 'blob'
        return await this.#blob(req, res, method, this.#name(m[1]!, info), decodeSegment(m[2]!), info)
      }
      if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(p))) {
        info.route = 'tags'
        return await this.#tags(req, res, method, this.#name(m[1]!, info), query, info)
      }
      if ((m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(p))) {
        info.route = 'referrers'
        return await this.#referrers(req, res, method, this.#name(m[1]!, info), decodeSegment(m[2]!), query, info)
      }
      info.route = 'unknown'
      throw new HttpError(404, 'UNSUPPORTED', `no such endpoint: ${method} ${p.slice(0, 200)}`)
    } catch (e) {
      const err = toHttpError(e, context)
      // Store errors name files; a client learns nothing of the server's paths.
      const root = this.#o.storageRoot
      if (root !== undefined && err.message.includes(root)) {
        sendError(req, res, new HttpError(err.status, err.code, err.message.split(root).join('<root>'), { headers: err.headers, detail: err.detail }))
      } else {
        sendError(req, res, err)
      }
    }
  }

  #name(raw: string, info: RequestInfo): string {
    const name = checkRepositoryName(raw)
    info.repository = name
    return name
  }

  async #access(req: http.IncomingMessage, info: RequestInfo, scopes: Scope[]): Promise<string | undefined> {
    const auth = this.#o.auth
    if (!auth) return undefined
    const user = await auth.authenticate(req)
    info.user = user
    auth.authorize(req, user, scopes)
    return user
  }

  #writable(): void {
    if (this.#o.readOnly) throw new HttpError(405, 'UNSUPPORTED', 'the registry is read-only')
  }

  async #base(req: http.IncomingMessage, res: http.ServerResponse, info: RequestInfo): Promise<void> {
    const auth = this.#o.auth
    if (auth) {
      const user = await auth.authenticate(req)
      info.user = user
      // Valid credentials of anyone, or a valid (even anonymous) token, open /v2/.
      if (user === undefined && req.headers.authorization === undefined) {
        throw new HttpError(401, 'UNAUTHORIZED', 'authentication required', { headers: { 'WWW-Authenticate': auth.challenge([], req) } })
      }
    }
    send(req, res, 200, { 'Content-Type': 'application/json' }, '{}')
  }

  async #catalog(req: http.IncomingMessage, res: http.ServerResponse, query: URLSearchParams, info: RequestInfo): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed(req)
    let repos = await this.#o.storage.listRepositories()
    const auth = this.#o.auth
    if (auth) {
      const user = await auth.authenticate(req)
      info.user = user
      repos = repos.filter((r) => auth.allows(user, r, 'pull'))
    }
    const { page, next } = paginate(repos, query)
    const headers: Record<string, string> = { 'Content-Type': 'application/json' }
    if (next !== undefined) headers.Link = `</v2/_catalog?n=${page.length}&last=${encodeURIComponent(next)}>; rel="next"`
    send(req, res, 200, headers, JSON.stringify({ repositories: page }))
  }

  async #manifest(req: http.IncomingMessage, res: http.ServerResponse, method: string, name: string, rawRef: string, info: RequestInfo): Promise<void> {
    let ref: ReturnType<typeof parseReference>
    try {
      ref = parseReference(rawRef)
    } catch (e) {
      // A name that cannot be a tag names no manifest: 404 for reads (as the conformance suite
      // expects of `.INVALID_MANIFEST_NAME`), 400 for a push.
      if (method !== 'PUT' && e instanceof HttpError && e.code === 'MANIFEST_INVALID') throw new HttpError(404, 'MANIFEST_UNKNOWN', e.message)
      throw e
    }
    const storage = this.#o.storage
    if (method === 'GET' || method === 'HEAD') {
      await this.#access(req, info, [{ repository: name, actions: ['pull'] }])
      const m = await storage.getManifest(name, ref)
      if (!m) throw new HttpError(404, 'MANIFEST_UNKNOWN', `manifest ${rawRef} not found in ${name}`)
      send(
        req,
        res,
        200,
        {
          'Content-Type': m.mediaType,
          'Docker-Content-Digest': m.digest,
          ETag: `"${m.digest}"`,
        },
        m.bytes,
      )
      return
    }
    if (method === 'PUT') {
      await this.#access(req, info, [{ repository: name, actions: ['pull', 'push'] }])
      this.#writable()
      return this.#putManifest(req, res, name, ref)
    }
    if (method === 'DELETE') {
      await this.#access(req, info, [{ repository: name, actions: ['delete'] }])
      this.#writable()
      const ok = 'digest' in ref ? await storage.deleteManifest(name, ref.digest) : await storage.deleteTag(name, ref.tag)
      if (!ok) throw new HttpError(404, 'MANIFEST_UNKNOWN', `manifest ${rawRef} not found in ${name}`)
      send(req, res, 202, {})
      return
    }
    throw methodNotAllowed(req)
  }

  async #putManifest(req: http.IncomingMessage, res: http.ServerResponse, name: string, ref: { digest: Digest } | { tag: string }): Promise<void> {
    const max = this.#o.maxManifestBytes
    const declared = contentLength(req)
    // distribution-spec §Pushing Manifests: a registry SHOULD answer 413 over its limit.
    if (declared !== undefined && declared > max) {
      throw new HttpError(413, 'MANIFEST_INVALID', `manifest is ${declared} bytes, larger than the limit of ${max} bytes`)
    }
    let bytes: Buffer
    try {
      bytes = await readAllLimited(req, max, 'manifest')
    } catch (e) {
      if (e instanceof LadingError && e.code === 'SIZE_LIMIT') throw new HttpError(413, 'MANIFEST_INVALID', e.message)
      throw e
    }
    if (declared !== undefined && bytes.length !== declared)
      throw new HttpError(400, 'SIZE_INVALID', `body has ${bytes.length} bytes, Content-Length says ${declared}`)
    const source = 'manifest'
    const doc = parseJson(bytes, source)
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new HttpError(400, 'MANIFEST_INVALID', 'a manifest must be a JSON object')
    const header = mediaTypeOf(req.headers['content-type'])
    const field = (doc as { mediaType?: unknown }).mediaType
    // distribution-spec §Pushing Manifests: Content-Type is the manifest's mediaType when it has one.
    if (header !== undefined && typeof field === 'string' && field !== header) {
      throw new HttpError(400, 'MANIFEST_INVALID', `Content-Type ${header} disagrees with the manifest's mediaType ${field}`)
    }
    const mediaType = header ?? manifestMediaType(bytes, source)
    let requires: Digest[]
    let subject: Digest | undefined
    if (isIndexMediaType(mediaType)) {
      const index = parseIndex(bytes, source, mediaType)
      requires = index.manifests.map((d) => d.digest)
      subject = index.subject?.digest
    } else if (isManifestMediaType(mediaType)) {
      const manifest = parseManifest(bytes, source, mediaType)
      // Layers with `urls` (non-distributable / foreign layers, image-spec layer.md) are fetched
      // from those URLs and are never pushed, so they need not be here.
      requires = [manifest.config.digest, ...manifest.layers.filter((l) => !(l.urls && l.urls.length > 0)).map((l) => l.digest)]
      subject = manifest.subject?.digest
    } else {
      throw new HttpError(
        400,
        'MANIFEST_INVALID',
        `unsupported manifest media type ${JSON.stringify(mediaType.slice(0, 200))} (OCI and Docker v2 manifests and indexes are stored)`,
      )
    }
    // A tag is kept as an index.json ref.name (image-layout.md), whose grammar is narrower than a
    // registry tag's: refuse the difference clearly rather than fail writing index.json.
    if ('tag' in ref && !isValidTag(ref.tag)) {
      throw new HttpError(
        400,
        'MANIFEST_INVALID',
        `tag ${JSON.stringify(ref.tag)} is a registry tag but not an OCI image layout ref.name (image-spec annotations.md: [A-Za-z0-9] runs joined by one of - . _ : @ + or --), and lading serve keeps tags in OCI layouts`,
      )
    }
    let digest: Digest
    if ('digest' in ref) {
      digest = digestOf(bytes, digestAlgorithm(ref.digest))
      if (digest !== ref.digest) throw new HttpError(400, 'DIGEST_INVALID', `manifest digest is ${digest}, not ${ref.digest}`)
    } else {
      digest = digestOf(bytes)
    }
    const unpin = await this.#o.inFlight?.pinSettled([digest, ...requires])
    try {
      await this.#o.storage.putManifest(name, { bytes, mediaType, digest }, 'tag' in ref ? ref.tag : undefined, requires)
    } finally {
      unpin?.()
    }
    const headers: Record<string, string> = { Location: `/v2/${name}/manifests/${digest}`, 'Docker-Content-Digest': digest }
    // distribution-spec §Pushing Manifests with Subject.
    if (subject !== undefined) headers['OCI-Subject'] = subject
    send(req, res, 201, headers)
  }

  async #blob(req: http.IncomingMessage, res: http.ServerResponse, method: string, name: string, rawDigest: string, info: RequestInfo): Promise<void> {
    const digest = parseDigestParam(rawDigest)
    const storage = this.#o.storage
    if (method === 'DELETE') {
      await this.#access(req, info, [{ repository: name, actions: ['delete'] }])
      this.#writable()
      if (!(await storage.deleteBlob(name, digest))) throw new HttpError(404, 'BLOB_UNKNOWN', `blob ${digest} not found in ${name}`)
      send(req, res, 202, {})
      return
    }
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(req)
    await this.#access(req, info, [{ repository: name, actions: ['pull'] }])
    const opened = await storage.openBlob(name, digest)
    if (!opened) throw new HttpError(404, 'BLOB_UNKNOWN', `blob ${digest} not found in ${name}`)
    const { fh, size } = opened
    let handedOff = false
    try {
      const headers: Record<string, string> = {
        'Content-Type': 'application/octet-stream',
        'Docker-Content-Digest': digest,
        'Accept-Ranges': 'bytes',
        ETag: `"${digest}"`,
      }
      // RFC 9110 §14: one range; anything we do not understand is ignored (a full 200).
      const range = parseRange(req.headers.range, size)
      if (range === 'unsatisfiable') {
        throw new HttpError(416, 'BLOB_UNKNOWN', `range ${req.headers.range} is outside the blob's ${size} bytes`, {
          headers: { 'Content-Range': `bytes */${size}` },
        })
      }
      const [start, end] = range ?? [0, size - 1]
      const length = size === 0 ? 0 : end - start + 1
      if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`
      headers['Content-Length'] = String(length)
      res.writeHead(range ? 206 : 200, { ...API_VERSION, ...headers })
      if (method === 'HEAD' || length === 0) {
        res.end()
        return
      }
      handedOff = true
      if (range) {
        const stream = createReadStream('', { fd: fh, start, end, highWaterMark: POOL_BLOCK_SIZE, autoClose: true })
        await pipeline(stream, res).catch(() => {
          /* the client went away; the stream closed the file */
        })
      } else {
        await sendPooled(new PooledFileReader(fh), res, length)
      }
    } finally {
      if (!handedOff) await fh.close()
    }
  }

  async #upload(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    name: string,
    id: string,
    query: URLSearchParams,
    info: RequestInfo,
  ): Promise<void> {
    const storage = this.#o.storage
    await this.#access(req, info, [{ repository: name, actions: ['pull', 'push'] }])
    this.#writable()
    if (id === '') {
      if (method !== 'POST') throw methodNotAllowed(req)
      return this.#startUpload(req, res, name, query, info)
    }
    const status = await storage.uploadStatus(name, id)
    if (!status) {
      drain(req)
      throw new HttpError(404, 'BLOB_UPLOAD_UNKNOWN', `upload ${id.slice(0, 64)} unknown to ${name}`)
    }
    const location = `/v2/${name}/blobs/uploads/${id}`
    if (method === 'GET') {
      send(req, res, 204, { Location: location, Range: rangeHeader(status.size), 'Docker-Upload-UUID': id })
      return
    }
    if (method === 'DELETE') {
      await storage.cancelUpload(name, id)
      send(req, res, 204, {})
      return
    }
    if (method === 'PATCH') {
      const size = await this.#append(req, name, id, location)
      send(req, res, 202, { Location: location, Range: rangeHeader(size), 'Docker-Upload-UUID': id })
      return
    }
    if (method === 'PUT') {
      const digest = parseDigestParam(query.get('digest'))
      if ((contentLength(req) ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined) await this.#append(req, name, id, location)
      else drain(req)
      await this.#commit(req, res, name, id, digest)
      return
    }
    throw methodNotAllowed(req)
  }

  async #startUpload(req: http.IncomingMessage, res: http.ServerResponse, name: string, query: URLSearchParams, info: RequestInfo): Promise<void> {
    const storage = this.#o.storage
    const mount = query.get('mount')
    if (mount !== null) {
      const digest = parseDigestParam(mount, 'mount digest')
      const from = query.get('from')
      let mounted = false
      if (from !== null && from !== '') {
        const fromName = checkRepositoryName(from)
        const auth = this.#o.auth
        // Without pull on `from` the mount quietly becomes an upload (distribution-spec §Mounting a blob: 202).
        if (!auth || auth.allows(info.user, fromName, 'pull')) mounted = await storage.mountBlob(name, digest, fromName)
      } else if (this.#o.autoMount) {
        const auth = this.#o.auth
        if (!auth) {
          mounted = await storage.mountBlob(name, digest)
        } else {
          // With access rules, a digest alone must not open a blob of a repository the caller
          // may not pull: mount only from one it may.
          for (const repo of await storage.listRepositories()) {
            if (repo === name || !auth.allows(info.user, repo, 'pull') || (await storage.statBlob(repo, digest)) === undefined) continue
            mounted = await storage.mountBlob(name, digest, repo)
            if (mounted) break
          }
          if (!mounted && (await storage.statBlob(name, digest)) !== undefined) mounted = true
        }
      }
      if (mounted) {
        drain(req)
        send(req, res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest })
        return
      }
    }
    const digestParam = query.get('digest')
    const id = await storage.startUpload(name)
    const location = `/v2/${name}/blobs/uploads/${id}`
    if (digestParam !== null && mount === null) {
      // distribution-spec §Single POST monolithic upload.
      let digest: Digest
      try {
        digest = parseDigestParam(digestParam)
        await this.#append(req, name, id, location)
      } catch (e) {
        await storage.cancelUpload(name, id)
        throw e
      }
      await this.#commit(req, res, name, id, digest)
      return
    }
    drain(req)
    const headers: Record<string, string> = { Location: location, Range: '0-0', 'Docker-Upload-UUID': id }
    if (this.#o.chunkMinLength > 0) headers['OCI-Chunk-Min-Length'] = String(this.#o.chunkMinLength)
    send(req, res, 202, headers)
  }

  /** Append the request body to the session, at its Content-Range when given. Returns the new size. */
  async #append(req: http.IncomingMessage, name: string, id: string, location: string): Promise<number> {
    let start: number | undefined
    let length = contentLength(req)
    const cr = req.headers['content-range']
    if (cr !== undefined) {
      const m = CONTENT_RANGE_RE.exec(cr)
      if (!m) {
        drain(req)
        throw new HttpError(400, 'BLOB_UPLOAD_INVALID', `invalid Content-Range ${JSON.stringify(cr.slice(0, 100))}: expected <start>-<end>`)
      }
      const a = Number(m[1])
      const b = Number(m[2])
      if (b < a) {
        drain(req)
        throw new HttpError(416, 'BLOB_UPLOAD_INVALID', `invalid Content-Range ${cr}: end before start`, { headers: { Location: location } })
      }
      if (length !== undefined && length !== b - a + 1) {
        drain(req)
        throw new HttpError(400, 'SIZE_INVALID', `Content-Range ${cr} is ${b - a + 1} bytes, Content-Length says ${length}`)
      }
      start = a
      length = b - a + 1
    }
    try {
      return await this.#o.storage.appendUpload(name, id, req, start, length)
    } catch (e) {
      if (e instanceof LadingError && e.code === 'CONFLICT') {
        const size = (e as LadingError & { rangeSize?: number }).rangeSize ?? 0
        throw new HttpError(416, 'BLOB_UPLOAD_INVALID', e.message, { headers: { Location: location, Range: rangeHeader(size) } })
      }
      if (e instanceof LadingError && e.code === 'SIZE_MISMATCH') throw new HttpError(400, 'SIZE_INVALID', e.message)
      if (e instanceof LadingError && e.code === 'NOT_FOUND') throw new HttpError(404, 'BLOB_UPLOAD_UNKNOWN', e.message)
      throw e
    }
  }

  async #commit(req: http.IncomingMessage, res: http.ServerResponse, name: string, id: string, digest: Digest): Promise<void> {
    const unpin = await this.#o.inFlight?.pinSettled([digest])
    try {
      await this.#o.storage.commitUpload(name, id, digest)
    } catch (e) {
      if (e instanceof LadingError && e.code === 'NOT_FOUND') throw new HttpError(404, 'BLOB_UPLOAD_UNKNOWN', e.message)
      throw e
    } finally {
      unpin?.()
    }
    send(req, res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest })
  }

  async #tags(req: http.IncomingMessage, res: http.ServerResponse, method: string, name: string, query: URLSearchParams, info: RequestInfo): Promise<void> {
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(req)
    await this.#access(req, info, [{ repository: name, actions: ['pull'] }])
    const tags = await this.#o.storage.listTags(name)
    if (!tags) throw new HttpError(404, 'NAME_UNKNOWN', `repository ${name} not found`)
    const { page, next } = paginate(tags, query)
    const headers: Record<string, string> = { 'Content-Type': 'application/json' }
    // distribution-spec §Listing Tags: Link rel="next" (RFC 5988) when more remain.
    if (next !== undefined) headers.Link = `</v2/${name}/tags/list?n=${page.length}&last=${encodeURIComponent(next)}>; rel="next"`
    send(req, res, 200, headers, JSON.stringify({ name, tags: page }))
  }

  async #referrers(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: string,
    name: string,
    rawDigest: string,
    query: URLSearchParams,
    info: RequestInfo,
  ): Promise<void> {
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(req)
    const digest = parseDigestParam(rawDigest)
    await this.#access(req, info, [{ repository: name, actions: ['pull'] }])
    let manifests = await this.#o.storage.listReferrers(name, digest)
    const headers: Record<string, string> = { 'Content-Type': MediaType.OciIndex }
    const artifactType = query.get('artifactType')
    if (artifactType !== null && artifactType !== '') {
      manifests = manifests.filter((d) => d.artifactType === artifactType)
      // distribution-spec §Listing Referrers: say which filter was applied.
      headers['OCI-Filters-Applied'] = 'artifactType'
    }
    send(req, res, 200, headers, JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }))
  }
}

/** n/last pagination (distribution-spec §Listing Tags): entries after `last`, at most `n`. */
function paginate(all: string[], query: URLSearchParams): { page: string[]; next: string | undefined } {
  const last = query.get('last')
  const nRaw = query.get('n')
  let n = MAX_LIST
  if (nRaw !== null && nRaw !== '') {
    if (!/^\d{1,9}$/.test(nRaw)) throw new HttpError(400, 'UNSUPPORTED', `invalid n ${JSON.stringify(nRaw.slice(0, 50))}: expected a non-negative integer`)
    n = Math.min(Number(nRaw), MAX_LIST)
  }
  const from = last === null || last === '' ? all : all.filter((t) => t > last)
  const page = from.slice(0, n)
  const next = n > 0 && from.length > page.length ? page[page.length - 1] : undefined
  return { page, next }
}

/**
 * The last path segment (a tag, digest or session id), percent-decoded: clients encode a
 * digest's ':' as %3A. What comes out is checked against the tag, digest or UUID grammar, none
 * of which admits '/' or '.'-only names, before it is used anywhere.
 */
function decodeSegment(s: string): string {
  if (!s.includes('%')) return s
  try {
    return decodeURIComponent(s)
  } catch {
    throw new HttpError(400, 'UNSUPPORTED', 'malformed percent-encoding in the request path')
  }
}

function rangeHeader(size: number): string {
  return `0-${Math.max(size - 1, 0)}`
}

function mediaTypeOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const t = header.split(';')[0]!.trim()
  return t === '' ? undefined : t
}

function contentLength(req: http.IncomingMessage): number | undefined {
  const v = req.headers['content-length']
  if (v === undefined) return undefined
  // Node's parser has already refused non-numeric and conflicting values.
  return Number(v)
}

/** RFC 9110 §14.1.2: `bytes=a-b`, `bytes=a-`, `bytes=-n`. undefined: serve the whole blob. */
export function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0 || size === 0) return 'unsatisfiable'
    return [Math.max(size - n, 0), size - 1]
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  // last < first is an invalid range-spec; answered 416, as Go's net/http (and so the
  // conformance suite) does, rather than ignored.
  if (m[2] !== '' && Number(m[2]) < start) return 'unsatisfiable'
  if (start >= size) return 'unsatisfiable'
  return [start, end]
}

function methodNotAllowed(req: http.IncomingMessage): HttpError {
  return new HttpError(405, 'UNSUPPORTED', `method ${String(req.method).slice(0, 20)} not allowed here`)
}

/**
 * A whole blob of `length` bytes out to the client through blocks of the block pool
 * (pipeReturningBlocks): a 95 MB GET cycles through a few 1 MiB blocks instead of faulting in and
 * garbage-collecting 95 fresh ones as createReadStream does, and the response ends with its last
 * byte, so a client that has all it was promised and hangs up (skopeo does) does not leave the
 * answer unfinished. Resolves once the reader has closed the file.
 */
function sendPooled(body: PooledFileReader, res: http.ServerResponse, length: number): Promise<void> {
  return new Promise<void>((resolve) => {
    pipeReturningBlocks(body, res, length)
    body.once('error', () => res.destroy())
    // The client went away: stop reading (destroying the reader closes the file). After a whole
    // answer the reader goes on to the end of the file and closes it itself, its last block
    // going back to the pool.
    res.once('close', () => {
      if (!res.writableFinished) body.destroy()
    })
    body.once('close', () => resolve())
  })
}

/** Discard a request body we will not read, so the connection can carry the next request. */
function drain(req: http.IncomingMessage): void {
  if (!req.readableEnded) req.resume()
}

function send(req: http.IncomingMessage, res: http.ServerResponse, status: number, headers: Record<string, string>, body?: string | Buffer): void {
  drain(req)
  const h: Record<string, string> = { ...API_VERSION, ...headers }
  if (body !== undefined) h['Content-Length'] = String(Buffer.byteLength(body))
  else if (status !== 204) h['Content-Length'] = '0'
  res.writeHead(status, h)
  if (req.method === 'HEAD' || body === undefined) res.end()
  else res.end(body)
}

export function sendError(req: http.IncomingMessage, res: http.ServerResponse, e: HttpError): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  // A body we did not read may still be arriving: close the connection after the answer rather
  // than read (and discard) an unbounded upload. `complete` (the parser saw the whole request),
  // not `readableEnded` (someone read it to its end): a HEAD or GET that gets a 404 has no body
  // left to arrive, and closing its connection made every keep-alive client reconnect after each
  // "blob unknown" answer of a push.
  if (!req.complete) res.setHeader('Connection', 'close')
  send(req, res, e.status, { 'Content-Type': 'application/json', ...e.headers }, e.body())
}
