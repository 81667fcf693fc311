/**
 * A bearer token server for docker-registry's `auth.token` (the Docker token protocol):
 * GET /token?service=&scope=repository:NAME:ACTIONS... with optional basic credentials answers
 * `{"token","access_token","expires_in","issued_at"}`, a JWT signed RS256 with a key whose
 * self-signed certificate (made by `openssl req -x509`) is the registry's rootcertbundle and
 * travels in the JWT header's x5c. Runs in the test process and records every request.
 */
import { createSign, randomBytes, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { listenOnLoopback } from './loopback.js'
import { selfSigned } from '../fixtures/tls.js'
import { ownedTempDir } from '../fixtures/owned-temp-dir.js'

export interface TokenServerOptions {
  /** username -> password; these users get every action they ask for. */
  users: Record<string, string>
  /** OAuth2 refresh tokens (identity tokens) -> user, for POST grant_type=refresh_token. */
  refreshTokens?: Record<string, string>
  /** Anonymous requests get `pull` (default: nothing). */
  anonymousPull?: boolean
  /** Token lifetime in seconds (default 300). */
  ttlSeconds?: number
  /**
   * The first N tokens are issued already expired (past the registry's 60 s leeway) while
   * claiming a normal expires_in: the client must refresh on the registry's 401.
   */
  expireFirst?: number
}

export interface TokenRequest {
  method: string
  user?: string
  scopes: string[]
  service?: string
  status: number
}

export interface TokenServer {
  realm: string
  service: string
  issuer: string
  certFile: string
  requests: TokenRequest[]
  /** Issue the next `n` tokens already expired (see TokenServerOptions.expireFirst). */
  expireNext(n: number): void
  stop(): Promise<void>
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url')
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  // The key and certificate live as long as the server, which its callers start with no
  // TestContext at hand (in before hooks): stop() removes them.
  const tmp = ownedTempDir({ prefix: 'lading-token-' })
  const { cert: certFile, key: keyFile } = selfSigned(tmp.dir, 'token', 'lading-token-server')
  const key = readFileSync(keyFile, 'utf8')
  const certDer = new X509Certificate(readFileSync(certFile)).raw
  const service = 'lading-test-registry'
  const issuer = 'lading-test-issuer'
  const requests: TokenRequest[] = []
  let expiredToIssue = opts.expireFirst ?? 0
  const ttl = opts.ttlSeconds ?? 300

  const sign = (sub: string, access: Array<{ type: string; name: string; actions: string[] }>, expired: boolean): string => {
    const now = Math.floor(Date.now() / 1000)
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] }
    const claims = {
      iss: issuer,
      sub,
      aud: service,
      iat: expired ? now - 600 : now,
      nbf: expired ? now - 600 : now - 10,
      exp: expired ? now - 300 : now + ttl,
      jti: randomBytes(12).toString('hex'),
      access,
    }
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const sig = createSign('RSA-SHA256').update(input).sign(key)
    return `${input}.${b64url(sig)}`
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => handle(req, Buffer.concat(chunks).toString('utf8'), res))
  })
  const handle = (req: http.IncomingMessage, body: string, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x')
    const form = req.method === 'POST' ? new URLSearchParams(body) : undefined
    const scopes = form ? (form.get('scope') ?? '').split(' ').filter(Boolean) : url.searchParams.getAll('scope')
    const svc = (form ? form.get('service') : url.searchParams.get('service')) ?? undefined
    let user: string | undefined
    const auth = req.headers.authorization
    const reply = (status: number, v: unknown): void => {
      requests.push({ method: req.method ?? '', ...(user ? { user } : {}), scopes, ...(svc ? { service: svc } : {}), status })
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(v))
    }
    if (url.pathname !== '/token') return reply(404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] })
    if (form) {
      const rt = form.get('refresh_token') ?? ''
      if (form.get('grant_type') !== 'refresh_token' || !opts.refreshTokens || !Object.hasOwn(opts.refreshTokens, rt)) {
        return reply(401, { error: 'invalid_grant' })
      }
      user = opts.refreshTokens[rt]
    } else if (auth?.startsWith('Basic ')) {
      const text = Buffer.from(auth.slice(6), 'base64').toString('utf8')
      const i = text.indexOf(':')
      const u = text.slice(0, i)
      if (i < 0 || !Object.hasOwn(opts.users, u) || opts.users[u] !== text.slice(i + 1)) {
        return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] })
      }
      user = u
    }
    const access: Array<{ type: string; name: string; actions: string[] }> = []
    for (const s of scopes) {
      const parts = s.split(':')
      if (parts.length < 3) continue
      const actions = parts.pop()!.split(',').filter(Boolean)
      const type = parts.shift()!
      const name = parts.join(':')
      const granted = user ? actions : opts.anonymousPull ? actions.filter((a) => a === 'pull') : []
      access.push({ type, name, actions: granted })
    }
    const expired = expiredToIssue > 0
    if (expired) expiredToIssue--
    const token = sign(user ?? '', access, expired)
    reply(200, { token, access_token: token, expires_in: ttl, issued_at: new Date().toISOString() })
  }
  const listening = await listenOnLoopback(server)
  return {
    realm: `http://${listening.host}/token`,
    service,
    issuer,
    certFile,
    requests,
    expireNext(n: number) {
      expiredToIssue = n
    },
    async stop() {
      await listening.stop()
      await tmp.remove()
    },
  }
}
