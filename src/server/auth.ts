/**
 * Authentication and per-repository access for `lading serve`.
 *
 * - Users come from an htpasswd file of bcrypt entries (`htpasswd -B`, what docker-registry
 *   reads). bcrypt is done by `bcryptjs`: Node's crypto has no bcrypt. A password that checked
 *   out is remembered (by a SHA-256 of user and password, for 5 minutes) so that a push of many
 *   blobs does not pay bcrypt's cost on every request.
 * - `basic` mode: every request carries Basic credentials; the challenge is
 *   `Basic realm="..."`.
 * - `token` mode (the Docker token protocol that docker-registry's `auth.token` speaks): the
 *   challenge is `Bearer realm="<this server>/auth/token",service=...,scope=...`; the token
 *   endpoint authenticates with Basic credentials (or none: anonymous) and grants what the access
 *   rules allow of the scopes asked for. Tokens are HMAC-SHA256 signed with a key made at start
 *   (they die with the server; clients fetch new ones on the next 401).
 * - Access rules (config `auth.access`): every rule that matches the repository and
 *   the user adds its actions. Without rules, an authenticated user may do everything and
 *   anonymous nothing.
 *
 * A 401 means "who are you" (no or bad credentials, or a token lacking the scope: the client
 * fetches a new one); a 403 DENIED means an authenticated user the rules refuse.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type http from 'node:http'
import bcrypt from 'bcryptjs'
import { LadingError } from '../errors.js'
import type { Action, Authorizer, Scope } from './api.js'
import type { AccessRule } from './config.js'
import { HttpError } from './errors.js'

export const TOKEN_PATH = '/auth/token'
const CACHE_MS = 5 * 60 * 1000
const ANONYMOUS = 'anonymous'

export interface AuthOptions {
  htpasswdFile: string
  realm: string
  mode: 'basic' | 'token'
  tokenTtlSeconds: number
  access?: AccessRule[]
}

/** user -> bcrypt hash, from an htpasswd file; only bcrypt entries are accepted. */
export function readHtpasswd(file: string): Map<string, string> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new LadingError('USAGE', `${file}: cannot read the htpasswd file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  const users = new Map<string, string>()
  text.split('\n').forEach((line, i) => {
    const l = line.trim()
    if (l === '' || l.startsWith('#')) return
    const c = l.indexOf(':')
    const hash = l.slice(c + 1)
    if (c <= 0 || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
      throw new LadingError('USAGE', `${file}:${i + 1}: not a bcrypt htpasswd entry (make one with htpasswd -Bbn USER PASSWORD)`)
    }
    users.set(l.slice(0, c), hash)
  })
  return users
}

function globRe(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  )
}

interface TokenClaims {
  sub: string
  access: Array<{ name: string; actions: Action[] }>
  exp: number
}

export class RegistryAuth implements Authorizer {
  readonly mode: 'basic' | 'token'
  readonly tokenPath = TOKEN_PATH
  readonly #users: Map<string, string>
  readonly #realm: string
  readonly #ttl: number
  readonly #rules: Array<{ re: RegExp; users: string[]; actions: Action[] }> | undefined
  readonly #key = randomBytes(32)
  readonly #verified = new Map<string, number>()

  constructor(opts: AuthOptions) {
    this.mode = opts.mode
    this.#users = readHtpasswd(opts.htpasswdFile)
    this.#realm = opts.realm
    this.#ttl = opts.tokenTtlSeconds
    this.#rules = opts.access?.map((r) => ({ re: globRe(r.repository), users: r.users, actions: r.actions }))
  }

  allows(user: string | undefined, repository: string, action: Action): boolean {
    if (!this.#rules) return user !== undefined
    const who = user ?? ANONYMOUS
    return this.#rules.some(
      (r) => r.re.test(repository) && r.actions.includes(action) && (r.users.includes(who) || (user !== undefined && r.users.includes('*'))),
    )
  }

  async authenticate(req: http.IncomingMessage): Promise<string | undefined> {
    const h = req.headers.authorization
    if (h === undefined) return undefined
    const sp = h.indexOf(' ')
    const scheme = h.slice(0, sp < 0 ? h.length : sp).toLowerCase()
    const value = sp < 0 ? '' : h.slice(sp + 1).trim()
    if (scheme === 'basic') return this.#basic(value, req)
    if (scheme === 'bearer' && this.mode === 'token') {
      const claims = this.#verifyToken(value)
      if (!claims) throw this.#unauthorized(req, [], 'invalid or expired token')
      ;(req as TokenRequest).tokenClaims = claims
      return claims.sub === ANONYMOUS ? undefined : claims.sub
    }
    throw this.#unauthorized(req, [], `unsupported authorization scheme ${JSON.stringify(scheme.slice(0, 20))}`)
  }

  authorize(req: http.IncomingMessage, user: string | undefined, scopes: Scope[]): void {
    const claims = (req as TokenRequest).tokenClaims
    for (const s of scopes) {
      for (const a of s.actions) {
        if (!this.allows(user, s.repository, a)) {
          if (user === undefined) throw this.#unauthorized(req, scopes, 'authentication required')
          throw new HttpError(403, 'DENIED', `${user} may not ${a} ${s.repository}`)
        }
        if (claims && !claims.access.some((g) => g.name === s.repository && g.actions.includes(a))) {
          throw this.#unauthorized(req, scopes, `token does not grant ${a} on ${s.repository}`)
        }
      }
    }
  }

  challenge(scopes: Scope[], req?: http.IncomingMessage): string {
    if (this.mode === 'basic') return `Basic realm="${this.#realm}"`
    const scope = scopes.map((s) => `repository:${s.repository}:${s.actions.join(',')}`).join(' ')
    return `Bearer realm="${this.#tokenRealm(req)}",service="${this.#realm}"${scope ? `,scope="${scope}"` : ''}`
  }

  /** GET /auth/token?service=&scope=repository:NAME:ACTIONS (Docker token protocol). */
  async handleToken(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.resume()
    let user: string | undefined
    try {
      const h = req.headers.authorization
      if (h !== undefined) {
        if (!/^basic /i.test(h)) throw new HttpError(401, 'UNAUTHORIZED', 'the token service takes Basic credentials')
        user = await this.#basic(h.slice(6).trim(), req)
      }
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(401, 'UNAUTHORIZED', 'invalid credentials')
      res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': `Basic realm="${this.#realm}"` }).end(err.body())
      return
    }
    const q = new URLSearchParams((req.url ?? '').split('?')[1] ?? '')
    const access: TokenClaims['access'] = []
    for (const scope of q.getAll('scope').flatMap((s) => s.split(' '))) {
      const m = /^repository:([^:]+):([a-z,*]+)$/.exec(scope)
      if (!m) continue
      const wanted = m[2] === '*' ? ['pull', 'push', 'delete'] : m[2]!.split(',')
      const actions = wanted.filter((a): a is Action => (a === 'pull' || a === 'push' || a === 'delete') && this.allows(user, m[1]!, a))
      if (actions.length > 0) access.push({ name: m[1]!, actions })
    }
    const now = Math.floor(Date.now() / 1000)
    const token = this.#signToken({ sub: user ?? ANONYMOUS, access, exp: now + this.#ttl })
    res
      .writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      .end(JSON.stringify({ token, access_token: token, expires_in: this.#ttl, issued_at: new Date(now * 1000).toISOString() }))
  }

  async #basic(value: string, req: http.IncomingMessage): Promise<string> {
    const decoded = Buffer.from(value, 'base64').toString('utf8')
    const c = decoded.indexOf(':')
    const user = c < 0 ? '' : decoded.slice(0, c)
    const pass = c < 0 ? '' : decoded.slice(c + 1)
    const hash = this.#users.get(user)
    const key = createHash('sha256').update(user).update('\0').update(pass).digest('hex')
    const until = this.#verified.get(key)
    if (hash !== undefined && until !== undefined && until > Date.now()) return user
    if (hash === undefined || !(await bcrypt.compare(pass, hash))) throw this.#unauthorized(req, [], 'invalid username or password')
    if (this.#verified.size > 10_000) this.#verified.clear()
    this.#verified.set(key, Date.now() + CACHE_MS)
    return user
  }

  #unauthorized(req: http.IncomingMessage, scopes: Scope[], why: string): HttpError {
    return new HttpError(401, 'UNAUTHORIZED', why, { headers: { 'WWW-Authenticate': this.challenge(scopes, req) } })
  }

  #tokenRealm(req?: http.IncomingMessage): string {
    const host = req?.headers.host
    const safeHost = host !== undefined && /^[A-Za-z0-9.\-[\]:]{1,300}$/.test(host) ? host : 'localhost'
    const tls = (req?.socket as { encrypted?: boolean } | undefined)?.encrypted === true
    return `${tls ? 'https' : 'http'}://${safeHost}${TOKEN_PATH}`
  }

  #signToken(claims: TokenClaims): string {
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url')
    const sig = createHmac('sha256', this.#key).update(payload).digest('base64url')
    return `${payload}.${sig}`
  }

  #verifyToken(token: string): TokenClaims | undefined {
    const dot = token.indexOf('.')
    if (dot < 0) return undefined
    const payload = token.slice(0, dot)
    const sigText = token.slice(dot + 1)
    const sig = Buffer.from(sigText, 'base64url')
    const want = createHmac('sha256', this.#key).update(payload).digest()
    // Canonical encoding only: base64url decoding ignores a last character's spare bits, so
    // without this check a token with a different last character would also pass.
    if (sig.length !== want.length || !timingSafeEqual(sig, want) || sig.toString('base64url') !== sigText) return undefined
    try {
      const c = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims
      return typeof c.exp === 'number' && c.exp > Date.now() / 1000 && Array.isArray(c.access) ? c : undefined
    } catch {
      return undefined
    }
  }
}

interface TokenRequest extends http.IncomingMessage {
  tokenClaims?: TokenClaims
}
