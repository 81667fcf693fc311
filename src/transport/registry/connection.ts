/**
 * One registry's HTTP connection: a pool of keep-alive connections (./http.ts: bounded per
 * origin, TLS options from the cert dir, optional proxy), the scheme decision, authentication
 * (anonymous, basic, bearer tokens from the WWW-Authenticate challenge, identity tokens),
 * redirects and retries. The distribution-spec operations are in client.ts on top of this.
 *
 * Contracts:
 * - Transient failures (connection errors, 5xx, 429 + Retry-After) are retried with capped
 *   exponential backoff whenever the request can be replayed (send(): bodies are Buffers). A
 *   stream body (sendStream()) goes once; the caller starts over with a fresh stream.
 * - Credentials go to the registry's own origin only, never to another host.
 * - Registry error bodies (distribution-spec §Error Codes) become one LadingError line.
 */
import type { Readable } from 'node:stream'
import { LadingError, isLadingError } from '../../errors.js'
import { parseChallenges, type Challenge } from '../auth/challenge.js'
import type { CredentialSource } from '../auth/credentials.js'
import type { Credentials } from '../auth/auth-file.js'
import { isLoopbackRegistry, registryEndpointHost } from '../docker-reference.js'
import { displayReference } from '../reference.js'
import { registryError, sanitize } from './registry-error.js'
import { backoffDelay, isRetryableError, isRetryableStatus, parseRetryAfter, retryPolicy, sleep, type RetryOptions, type RetryPolicy } from './retry.js'
import { loadTlsMaterial } from './tls.js'
import { HttpPool, drainResponse, type ProxySettings, type Response } from './http.js'

export type { Response } from './http.js'

export interface RegistryOptions {
  /** Verify TLS certificates (default true). false also allows plain HTTP (tried after HTTPS; loopback goes straight to HTTP). */
  tlsVerify?: boolean
  /** Directory with `*.crt` CAs and a `*.cert`/`*.key` client pair. */
  certDir?: string
  /** Explicit credentials; otherwise auth files and credential helpers are consulted. */
  creds?: Credentials
  /** Auth file to read first (else $REGISTRY_AUTH_FILE, containers auth.json, docker config). */
  authFile?: string
  retry?: RetryOptions
  /**
   * Upload blobs larger than this many bytes in PATCH chunks of this size, each retried on its
   * own. Default: blobs up to 8 MiB go in one PUT, larger ones stream in one PATCH (as skopeo).
   */
  chunkSize?: number
  /** Connections per origin (default 6). */
  maxConnections?: number
  /** Environment for credential lookup (HOME, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, DOCKER_CONFIG). */
  env?: NodeJS.ProcessEnv
  userAgent?: string
  /**
   * Inactivity timeout in ms (default 60000): connecting, sending, waiting for the response
   * headers (which must also be complete within twice it) and every gap in a response body. A request
   * that times out is retried like any transient failure (./retry.ts), then fails with one line
   * naming the registry, the request and the phase that stalled.
   */
  timeoutMs?: number
  /**
   * HTTP(S) proxy. Default: $HTTPS_PROXY / $HTTP_PROXY / $NO_PROXY (either case), as skopeo,
   * with loopback hosts never proxied (as Go's ProxyFromEnvironment). Given here, used as is.
   */
  proxy?: { httpProxy?: string; httpsProxy?: string; noProxy?: string }
}

/** The proxy configuration to use, or undefined for direct connections. */
export function proxySettings(explicit: RegistryOptions['proxy'], env: NodeJS.ProcessEnv = process.env): ProxySettings | undefined {
  if (explicit) {
    if (!explicit.httpProxy && !explicit.httpsProxy) return undefined
    return { ...explicit, noProxy: explicit.noProxy ?? '' }
  }
  const httpProxy = env.HTTP_PROXY || env.http_proxy
  const httpsProxy = env.HTTPS_PROXY || env.https_proxy
  if (!httpProxy && !httpsProxy) return undefined
  const noProxy = [env.NO_PROXY || env.no_proxy, 'localhost', '127.0.0.1', '::1'].filter(Boolean).join(',')
  return { ...(httpProxy ? { httpProxy } : {}), ...(httpsProxy ? { httpsProxy } : {}), noProxy }
}

export interface RegistryClientOptions extends RegistryOptions {
  /** Registry name as in references (`docker.io`, `host:5000`). */
  registry: string
}

const MAX_ERROR_BODY = 64 * 1024
const MAX_TOKEN_BODY = 1024 * 1024
const MAX_REDIRECTS = 10

export type Headers = Record<string, string | string[] | undefined>

export interface SendRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  /** Absolute URL, or a path starting with `/v2/` (resolved against the registry endpoint). */
  url: string
  headers?: Record<string, string>
  body?: Buffer
  /** Token scopes the request needs (`repository:NAME:pull,push`). */
  scopes: string[]
  /** For messages: `docker://host/repo: GET manifest latest`. */
  what: string
  /** Statuses handed back to the caller; anything else becomes a LadingError. */
  ok: number[]
  /**
   * Follow 301/302/303/307/308 (at most MAX_REDIRECTS hops; credentials only to the registry's
   * own origin). Default: for GET and HEAD, which a registry behind a CDN or proxy may redirect
   * (manifests as well as blobs); a request with a body is not replayed elsewhere unless asked.
   */
  followRedirects?: boolean
}

interface Token {
  value: string
  expiresAt: number
}

/** Merge scopes so each resource appears once with the union of its actions (pull,push order kept). */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, string[]>()
  for (const s of scopes) {
    const i = s.lastIndexOf(':')
    if (i < 0) continue
    const resource = s.slice(0, i)
    const actions = byResource.get(resource) ?? []
    for (const a of s.slice(i + 1).split(',')) if (a && !actions.includes(a)) actions.push(a)
    byResource.set(resource, actions)
  }
  return [...byResource].map(([r, a]) => `${r}:${a.join(',')}`).sort()
}

export function pullScope(repo: string): string {
  return `repository:${repo}:pull`
}
export function pushScope(repo: string): string {
  return `repository:${repo}:pull,push`
}
export function deleteScope(repo: string): string {
  return `repository:${repo}:delete`
}

export function header(h: Headers, name: string): string | undefined {
  const v = h[name]
  return Array.isArray(v) ? v[0] : v
}

export function baseMediaType(ct: string | undefined): string | undefined {
  if (!ct) return undefined
  return ct.split(';')[0]!.trim().toLowerCase() || undefined
}

/**
 * Read a small response body with a hard cap (Content-Length checked first). A body that fails
 * midway (reset, idle timeout) is a NETWORK LadingError naming `what`, whose `cause` is the
 * socket's error (so isRetryableError can tell a transient failure).
 */
export async function readBody(res: Response, max: number, what: string): Promise<Buffer> {
  const cl = header(res.headers, 'content-length')
  if (cl !== undefined && Number(cl) > max) {
    res.body.destroy()
    throw new LadingError('SIZE_LIMIT', `${what}: ${cl} bytes is larger than the limit of ${max} bytes`)
  }
  const chunks: Buffer[] = []
  let n = 0
  try {
    for await (const c of res.body) {
      const b = c as Buffer
      n += b.length
      if (n > max) {
        res.body.destroy()
        throw new LadingError('SIZE_LIMIT', `${what}: larger than the limit of ${max} bytes`)
      }
      chunks.push(b)
    }
  } catch (e) {
    if (isLadingError(e)) throw e
    throw new LadingError('NETWORK', `${what}: reading the response failed after ${n} bytes: ${describeNetworkError(e)}`, { cause: e })
  }
  return Buffer.concat(chunks, n)
}

export function drain(res: Response): Promise<void> {
  return drainResponse(res)
}

export class RegistryConnection {
  readonly registry: string
  readonly #opts: RegistryClientOptions
  readonly #policy: RetryPolicy
  #pool: HttpPool | undefined
  #poolReady: Promise<HttpPool> | undefined
  #base: Promise<string> | undefined
  /** undefined: not yet asked; null: the registry let us in anonymously. */
  #challenge: Challenge | null | undefined
  #pinged: Promise<void> | undefined
  #creds: Promise<Credentials | undefined> | undefined
  readonly #tokens = new Map<string, Token>()
  readonly #tokenFetches = new Map<string, Promise<Token>>()
  #closed = false

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry
    this.#opts = opts
    this.#policy = retryPolicy(opts.retry)
  }

  /** The retry policy (blob downloads use it for their Range resumes). */
  get policy(): RetryPolicy {
    return this.#policy
  }

  async #http(): Promise<HttpPool> {
    if (this.#closed) throw new LadingError('USAGE', `registry client for ${this.registry} is closed`)
    this.#poolReady ??= (async () => {
      const material = loadTlsMaterial(this.registry, this.#opts.certDir)
      const proxy = proxySettings(this.#opts.proxy)
      this.#pool = new HttpPool({
        tls: {
          rejectUnauthorized: this.#opts.tlsVerify !== false,
          ...(material.ca ? { ca: material.ca } : {}),
          ...(material.cert ? { cert: material.cert, key: material.key } : {}),
        },
        maxConnections: this.#opts.maxConnections ?? 6,
        // A silent registry is an error, not a hang: connect, headers and each body read must arrive in time.
        timeoutMs: this.#opts.timeoutMs ?? 60_000,
        ...(proxy ? { proxy } : {}),
      })
      return this.#pool
    })()
    return this.#poolReady
  }

  /**
   * The endpoint base URL. HTTPS unless TLS verification is off: then loopback registries use
   * plain HTTP unless they turn out to speak only TLS, and others try HTTPS first and fall back
   * to HTTP when it fails (skopeo's rule for insecure registries).
   */
  baseUrl(): Promise<string> {
    this.#base ??= (async () => {
      const host = registryEndpointHost(this.registry)
      if (this.#opts.tlsVerify !== false) return `https://${host}`
      if (isLoopbackRegistry(this.registry)) {
        // Plain HTTP first; a TLS-only server (Go answers "400 ... HTTP request to an HTTPS
        // server") or a refused handshake sends us to HTTPS without verification.
        try {
          const res = await this.#exchange('GET', `http://${host}/v2/`, {}, undefined, true)
          const body =
            res.statusCode === 400 ? (await readBody(res, MAX_ERROR_BODY, 'probe').catch(() => Buffer.alloc(0))).toString('utf8') : (await drain(res), '')
          if (!/HTTPS server/i.test(body)) {
            this.#learnChallenge(res)
            return `http://${host}`
          }
        } catch (e) {
          if (isLadingError(e) && e.code !== 'NETWORK') throw e
        }
        return `https://${host}`
      }
      try {
        const res = await this.#exchange('GET', `https://${host}/v2/`, {}, undefined, true)
        await drain(res)
        this.#learnChallenge(res)
        return `https://${host}`
      } catch (e) {
        if (isLadingError(e) && e.code !== 'NETWORK') throw e
        return `http://${host}`
      }
    })()
    return this.#base
  }

  async resolve(url: string): Promise<string> {
    return /^https?:\/\//i.test(url) ? url : new URL(url, await this.baseUrl()).toString()
  }

  #userAgent(): string {
    return this.#opts.userAgent ?? 'lading/0.1'
  }

  /**
   * One request with retries on network errors and transient statuses (when `replayable`).
   * Returns the response for any status it does not retry.
   */
  async #exchange(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    replayable: boolean,
    what?: string,
  ): Promise<Response> {
    const pool = await this.#http()
    for (let attempt = 1; ; attempt++) {
      let res: Response
      try {
        res = await pool.request(method, url, { 'user-agent': this.#userAgent(), ...headers }, body)
      } catch (e) {
        if (replayable && attempt < this.#policy.attempts && isRetryableError(e)) {
          await sleep(backoffDelay(this.#policy, attempt))
          continue
        }
        const tries = attempt > 1 ? ` (${attempt} attempts)` : ''
        throw new LadingError('NETWORK', `${what ?? `${method} ${url}`}: ${describeNetworkError(e)}${tries}${networkHint(e)}`, { cause: e })
      }
      if (replayable && attempt < this.#policy.attempts && isRetryableStatus(res.statusCode)) {
        const retryAfter = res.statusCode === 429 || res.statusCode === 503 ? parseRetryAfter(res.headers['retry-after']) : undefined
        await drain(res)
        await sleep(backoffDelay(this.#policy, attempt, retryAfter))
        continue
      }
      return res
    }
  }

  #credentials(): Promise<Credentials | undefined> {
    const src: CredentialSource = {}
    if (this.#opts.creds) src.creds = this.#opts.creds
    if (this.#opts.authFile) src.authFile = this.#opts.authFile
    if (this.#opts.env) src.env = this.#opts.env
    // Loaded on demand: an anonymous registry never needs auth files or credential helpers.
    this.#creds ??= import('../auth/credentials.js').then((m) => m.resolveCredentials(this.registry, src))
    return this.#creds
  }

  /** What a GET /v2/ answer says about authentication (§Determining Support): a 401's challenge, else none. */
  #learnChallenge(res: Response): void {
    if (res.statusCode === 401) this.#challenge = pickChallenge(parseChallenges(res.headers['www-authenticate'])) ?? null
    else if (res.statusCode >= 200 && res.statusCode < 300) this.#challenge = null
  }

  /**
   * Start talking to the registry in the background (scheme probe, GET /v2/), so that the first
   * real request finds the connection open and the challenge known. A failure here is dropped:
   * the first real request tries again and reports it.
   */
  warmUp(): void {
    if (this.#closed || this.#challenge !== undefined) return
    this.#ping().catch(() => {})
  }

  /** distribution-spec §Determining Support: GET /v2/ tells whether and how to authenticate. */
  async #ping(): Promise<void> {
    this.#pinged ??= (async () => {
      const url = await this.resolve('/v2/')
      if (this.#challenge !== undefined) return // the scheme probe was that GET /v2/ already
      const res = await this.#exchange('GET', url, {}, undefined, true, `${this.display()}: GET /v2/`)
      await drain(res)
      this.#learnChallenge(res)
      if (this.#challenge === undefined) this.#challenge = null
    })()
    try {
      await this.#pinged
    } catch (e) {
      this.#pinged = undefined
      throw e
    }
  }

  /** The Authorization header for these scopes under the current challenge (fetching a token if needed). */
  async #authorization(scopes: string[], forceRefresh: boolean): Promise<{ value?: string; basic: boolean }> {
    if (this.#challenge === undefined) await this.#ping()
    const ch = this.#challenge
    if (!ch) return { basic: false }
    const creds = await this.#credentials()
    if (ch.scheme === 'basic') {
      if (!creds || (creds.identityToken && !creds.password)) return { basic: false }
      return { value: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`, basic: true }
    }
    if (ch.scheme === 'bearer') {
      const merged = mergeScopes(scopes)
      const key = merged.join(' ')
      const cached = this.#tokens.get(key)
      if (cached && !forceRefresh && cached.expiresAt > Date.now()) return { value: `Bearer ${cached.value}`, basic: false }
      // Concurrent requests for the same scopes share one token request.
      let pending = forceRefresh ? undefined : this.#tokenFetches.get(key)
      if (!pending) {
        pending = this.#fetchToken(ch, merged, creds)
        this.#tokenFetches.set(key, pending)
        pending
          .then(
            (t) => {
              this.#tokens.set(key, t)
            },
            () => {},
          )
          .finally(() => {
            if (this.#tokenFetches.get(key) === pending) this.#tokenFetches.delete(key)
          })
      }
      const token = await pending
      return { value: `Bearer ${token.value}`, basic: false }
    }
    throw new LadingError('UNSUPPORTED', `${this.display()}: unsupported authentication scheme ${JSON.stringify(sanitize(ch.scheme, 40))}`)
  }

  /** Docker token protocol: GET realm?service=&scope=... with basic credentials when we have them. */
  async #fetchToken(ch: Challenge, scopes: string[], creds: Credentials | undefined): Promise<Token> {
    const realm = ch.params.realm
    if (!realm || !/^https?:\/\//i.test(realm)) throw new LadingError('REGISTRY_ERROR', `${this.display()}: bearer challenge without a usable realm`)
    const url = new URL(realm)
    if (ch.params.service) url.searchParams.set('service', ch.params.service)
    for (const s of scopes) url.searchParams.append('scope', s)
    const headers: Record<string, string> = {}
    const what = `${this.display()}: token from ${url.origin}${url.pathname}`
    let res: Response
    if (creds?.identityToken) {
      // OAuth2 refresh-token grant (the Docker token spec's POST form), as docker and
      // containers/image do for identity tokens.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'lading', access_type: 'offline' })
      if (ch.params.service) form.set('service', ch.params.service)
      if (scopes.length) form.set('scope', scopes.join(' '))
      const post = new URL(realm)
      res = await this.#exchange('POST', post.toString(), { 'content-type': 'application/x-www-form-urlencoded' }, Buffer.from(form.toString()), true, what)
    } else {
      if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
      res = await this.#exchange('GET', url.toString(), headers, undefined, true, what)
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      const body = await readBody(res, MAX_ERROR_BODY, what).catch(() => Buffer.alloc(0))
      if (creds?.identityToken) throw new LadingError('UNAUTHORIZED', `${this.display()}: UNAUTHORIZED: the identity token was refused (log in again)`)
      if (creds) throw new LadingError('UNAUTHORIZED', `${this.display()}: UNAUTHORIZED: wrong username or password`)
      throw registryError(what, res.statusCode, body, { anonymous: true, registry: this.registry })
    }
    if (res.statusCode !== 200) throw await this.failure(res, what)
    const body = await readBody(res, MAX_TOKEN_BODY, what)
    let v: { token?: unknown; access_token?: unknown; expires_in?: unknown }
    try {
      v = JSON.parse(body.toString('utf8'))
    } catch (e) {
      throw new LadingError('INVALID_JSON', `${what}: response is not JSON`, { cause: e })
    }
    const value = typeof v.token === 'string' && v.token ? v.token : typeof v.access_token === 'string' ? v.access_token : ''
    if (!value) throw new LadingError('REGISTRY_ERROR', `${what}: response has no token`)
    // Docker token spec: expires_in defaults to 60 s. Refresh a little early.
    const ttl = typeof v.expires_in === 'number' && v.expires_in > 0 ? v.expires_in : 60
    return { value, expiresAt: Date.now() + Math.max(1, ttl - 5) * 1000 }
  }

  display(repo?: string): string {
    return repo ? displayReference({ transport: 'docker', registry: this.registry, repository: repo }) : `docker://${this.registry}`
  }

  /**
   * A request with authentication (a 401 learns the challenge, refreshes an expired token and
   * tries once more), redirects (Authorization dropped when the host changes) and retries.
   */
  async send(req: SendRequest): Promise<Response> {
    const follow = req.followRedirects ?? (req.method === 'GET' || req.method === 'HEAD')
    let url = await this.resolve(req.url)
    // Credentials go to the registry's own origin only: not to an upload Location, a Link or a
    // redirect on another host (a blob store, a CDN), which get the request without them.
    const origin = new URL(await this.baseUrl()).origin
    let reauthed = false
    let redirects = 0
    let scopes = req.scopes
    for (;;) {
      const sameOrigin = new URL(url).origin === origin
      const auth = sameOrigin ? await this.#authorization(scopes, false) : { basic: false }
      const headers: Record<string, string> = { ...req.headers }
      if (auth.value) headers.authorization = auth.value
      const res = await this.#exchange(req.method, url, headers, req.body, true, req.what)
      const status = res.statusCode
      if (status === 401 && sameOrigin && !reauthed) {
        const challenge = pickChallenge(parseChallenges(res.headers['www-authenticate']))
        if (auth.basic || !challenge) throw await this.failure(res, req.what, { basicCredentials: auth.basic })
        await drain(res)
        reauthed = true
        this.#challenge = challenge
        // The challenge may name the scope it wants (insufficient_scope): ask for it too.
        if (challenge.params.scope) scopes = [...scopes, ...challenge.params.scope.split(' ')]
        await this.#authorization(scopes, true)
        continue
      }
      if (follow && (status === 301 || status === 302 || status === 303 || status === 307 || status === 308)) {
        const location = header(res.headers, 'location')
        await drain(res)
        if (!location) throw new LadingError('REGISTRY_ERROR', `${req.what}: redirect ${status} without Location`)
        if (++redirects > MAX_REDIRECTS) throw new LadingError('REGISTRY_ERROR', `${req.what}: more than ${MAX_REDIRECTS} redirects`)
        const next = new URL(location, url)
        if (next.protocol !== 'https:' && next.protocol !== 'http:')
          throw new LadingError('REGISTRY_ERROR', `${req.what}: redirect to unsupported URL scheme ${next.protocol}`)
        url = next.toString()
        continue
      }
      if (req.ok.includes(status)) return res
      throw await this.failure(res, req.what, { basicCredentials: auth.basic && status === 401 })
    }
  }

  /**
   * The error for a response with a status the caller cannot use: the registry's own error
   * body when it sent one, else a line saying what the status means here and what to do
   * (registry-error.ts), knowing whether we had credentials and how often we tried.
   */
  async failure(res: Response, what: string, opts: { basicCredentials?: boolean; attempts?: number } = {}): Promise<LadingError> {
    const body = await readBody(res, MAX_ERROR_BODY, what).catch(() => Buffer.alloc(0))
    const status = res.statusCode
    // Whether we had credentials matters to a 401 or 403 only; other statuses never look them up.
    const anonymous = status === 401 || status === 403 ? { anonymous: !(await this.#credentials().catch(() => undefined)) } : {}
    return registryError(what, status, body, {
      // send() retried a transient status until the budget ran out (#exchange).
      ...(isRetryableStatus(status) ? { attempts: this.#policy.attempts } : {}),
      ...opts,
      ...anonymous,
      registry: this.registry,
    })
  }

  /**
   * send() and read the whole (small) body, capped at `max`. A body cut off or stalled midway
   * is a transient failure like a reset before the headers: the request goes again (it is
   * replayable), up to the retry budget, then fails with one NETWORK line.
   */
  async sendForBody(req: SendRequest, max: number): Promise<{ res: Response; bytes: Buffer }> {
    for (let attempt = 1; ; attempt++) {
      const res = await this.send(req)
      try {
        return { res, bytes: await readBody(res, max, req.what) }
      } catch (e) {
        if (attempt >= this.#policy.attempts || !isRetryableError(e)) {
          if (!isLadingError(e, 'NETWORK')) throw e
          const tries = attempt > 1 ? ` (${attempt} attempts)` : ''
          throw new LadingError('NETWORK', `${e.message}${tries}${networkHint(e)}`, { cause: e.cause })
        }
        await sleep(backoffDelay(this.#policy, attempt))
      }
    }
  }

  /**
   * A request whose body is a stream (a blob upload in one PATCH). Authorised like send(), but
   * a stream cannot be replayed: it is sent once, without retries, redirects or a second try
   * after a 401, and the response comes back whatever its status (the caller decides, and
   * restarts the whole upload from a fresh stream if it can). A network failure is a NETWORK
   * LadingError whose cause tells whether it was transient (isRetryableError).
   */
  async sendStream(req: Omit<SendRequest, 'body' | 'ok' | 'followRedirects'> & { body: Readable }): Promise<Response> {
    let pool: HttpPool
    let url: string
    let headers: Record<string, string>
    try {
      url = await this.resolve(req.url)
      const sameOrigin = new URL(url).origin === new URL(await this.baseUrl()).origin
      const auth = sameOrigin ? await this.#authorization(req.scopes, false) : { basic: false }
      headers = { 'user-agent': this.#userAgent(), ...req.headers }
      if (auth.value) headers.authorization = auth.value
      pool = await this.#http()
    } catch (e) {
      req.body.destroy()
      throw e
    }
    try {
      return await pool.request(req.method, url, headers, req.body)
    } catch (e) {
      if (isLadingError(e)) throw e // the body's own failure (a digest mismatch), not the network's
      throw new LadingError('NETWORK', `${req.what}: ${describeNetworkError(e)}`, { cause: e })
    }
  }

  // ---------------------------------------------------------------- API

  /**
   * Check that we can talk to the registry with our credentials (the `lading login` test):
   * basic auth: GET /v2/ with them; token auth: a token (no scope) issued for them. A registry
   * that asks for no authentication at all cannot judge credentials; that is not an error.
   */
  async checkLogin(): Promise<void> {
    await this.#ping()
    const ch = this.#challenge
    if (ch === null) {
      // No authentication demanded: the credentials cannot be checked, but they are not wrong.
      return
    }
    const creds = await this.#credentials()
    if (!creds) throw new LadingError('UNAUTHORIZED', `${this.display()}: authentication required and no credentials given`)
    if (ch?.scheme === 'bearer') {
      await this.#fetchToken(ch, [], creds)
      return
    }
    const res = await this.send({ method: 'GET', url: '/v2/', scopes: [], what: `${this.display()}: GET /v2/`, ok: [200] })
    await drain(res)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#pool?.close()
  }
}

function pickChallenge(cs: Challenge[]): Challenge | undefined {
  return cs.find((c) => c.scheme === 'bearer') ?? cs.find((c) => c.scheme === 'basic') ?? cs[0]
}

/**
 * What to do about a network failure the user can fix: TLS spoken to a plain-HTTP registry
 * (OpenSSL's "wrong version number"), an unknown CA, a registry that stopped answering.
 */
export function networkHint(e: unknown): string {
  const text = describeNetworkError(e)
  if (/WRONG_VERSION_NUMBER|wrong version number|packet length too long/i.test(text)) {
    return ' (the registry answers in plain HTTP, not HTTPS: if it is meant to, use --tls-verify=false (copy: --src-tls-verify=false or --dest-tls-verify=false) or mark it insecure in registries.conf)'
  }
  if (/CERT|SELF_SIGNED|certificate/i.test(text)) return " (give the registry's CA with --cert-dir, or --tls-verify=false)"
  if (/ETIMEDOUT|timed out/i.test(text)) return ' (the registry stopped answering; LADING_REGISTRY_TIMEOUT=SECONDS sets how long to wait)'
  return ''
}

export function describeNetworkError(e: unknown): string {
  const parts: string[] = []
  for (let x: unknown = e, depth = 0; x && depth < 4; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as { code?: unknown }).code
    const msg = x instanceof Error ? x.message : String(x)
    const text = openSslReason(typeof code === 'string' && !msg.includes(code) ? `${code}: ${msg}` : msg)
    if (!parts.includes(text)) parts.push(text)
  }
  return sanitize(parts.join(': '), 300)
}

/**
 * OpenSSL's error line (`write EPROTO 80EC...:error:0A00010B:SSL routines:ssl3_get_record:wrong
 * version number:../deps/openssl/...:350:`) cut to its reason: `TLS error: wrong version number`.
 */
function openSslReason(text: string): string {
  return text.replace(/(?:(?:read|write) )?(?:EPROTO )?[0-9A-F]+:error:[0-9A-F]+:[^:]*routines:[^:]*:([^:]+):\S*/g, 'TLS error: $1')
}
