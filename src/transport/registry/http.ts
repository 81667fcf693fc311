/**
 * The HTTP layer under the registry client, on Node's own `http` and `https` modules: keep-alive
 * agents with a bounded number of connections per origin, TLS options from the cert dir, timeouts,
 * and HTTP(S) proxies through a CONNECT tunnel.
 *
 * Why not undici: it cost a short-lived CLI about 135 ms per run (loading it, compiling its llhttp
 * WebAssembly, and waiting at exit for V8's background compilation of it), which was most of the
 * gap to skopeo on a push or pull; node:http parses with the native llhttp already in the binary.
 * Node 20 has no proxy support of its own, hence the tunnel here (about 80 lines).
 *
 * Contracts:
 * - `request` resolves with the response once its headers arrive; the body is a stream the
 *   caller must consume or destroy (`drainResponse`), so the connection goes back to the pool.
 * - A request body is a Buffer, or a stream piped into the request: an error of that stream
 *   aborts the request (the connection is dropped, never reused half-written), and a request
 *   that fails takes the stream down with it.
 * - A silent peer is an error, not a hang: connecting, sending, waiting for headers, and every
 *   gap while reading the body are bounded by `timeoutMs` (socket inactivity, on new and reused
 *   keep-alive connections alike); the response headers must also be complete within
 *   2 x `timeoutMs` of the request's end, so a peer trickling a header byte at a time cannot hold a
 *   request forever. The error (code ETIMEDOUT, retryable) says which of these phases stalled.
 * - Idle pooled sockets never keep the process alive.
 * - Through a proxy, every request (http and https) goes through a CONNECT tunnel to the
 *   registry's host:port, and TLS to the registry runs inside the tunnel; loopback and NO_PROXY
 *   hosts connect directly.
 */
import type http from 'node:http'
import type https from 'node:https'
import type { Duplex, Readable } from 'node:stream'
import { createRequire } from 'node:module'
import net from 'node:net'
import type tls from 'node:tls'
import { deferredExtraCaCerts } from './extra-ca.js'
import { pipeReturningBlocks } from '../../io/block-pool.js'

let plainHttp: typeof http | undefined
/**
 * node:http, loaded by the first request: it cannot be part of the start-up snapshot
 * (src/cli/snapshot-entry.ts), whose builder has no Array.prototype.toSorted for it. Loaded
 * synchronously, so that a command's first request is created in the same turn that asks for
 * it, before work queued behind it (src/cli/commands/copy.ts lets it go first).
 */
function httpModule(): typeof http {
  plainHttp ??= createRequire(import.meta.url)('node:http') as typeof http
  return plainHttp
}

interface SecureModules {
  https: typeof https
  tls: typeof tls
}
let secure: SecureModules | undefined

/** node:https and node:tls, loaded on first use: a plain-HTTP registry (a local one) never pays for them. */
function secureModules(): SecureModules {
  if (!secure) {
    const req = createRequire(import.meta.url)
    secure = { https: req('node:https') as typeof https, tls: req('node:tls') as typeof tls }
  }
  return secure
}

export interface TlsOptions {
  rejectUnauthorized: boolean
  ca?: string[]
  cert?: string
  key?: string
}

export interface ProxySettings {
  httpProxy?: string
  httpsProxy?: string
  noProxy: string
}

export interface HttpOptions {
  tls: TlsOptions
  /** Connections per origin. */
  maxConnections: number
  /** Connect, headers and body-inactivity timeout in ms. */
  timeoutMs: number
  proxy?: ProxySettings
}

export interface Response {
  statusCode: number
  headers: http.IncomingHttpHeaders
  /** The body; consume it or destroy it. */
  body: http.IncomingMessage
}

/**
 * Extra CAs are added to Node's bundled roots (as Go's and containers/image's cert dirs add to the
 * system's), and so are NODE_EXTRA_CA_CERTS's when bin/lading deferred them (./extra-ca.ts).
 */
function caList(extra: string[] | undefined, t: typeof tls): string[] | undefined {
  const all = [...deferredExtraCaCerts(), ...(extra ?? [])]
  return all.length ? [...t.rootCertificates, ...all] : undefined
}

/** NO_PROXY matching as curl and Go read it: `*`, host names (a leading dot optional, subdomains match), IPs, with an optional `:port`. */
export function bypassesProxy(hostname: string, port: string, noProxy: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase()
    if (!entry) continue
    if (entry === '*') return true
    let name = entry
    let entryPort: string | undefined
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry)
    if (m) {
      name = m[1]!
      entryPort = m[2]
    }
    name = name.replace(/^\[|\]$/g, '').replace(/^\*?\./, '')
    if (entryPort && entryPort !== port) continue
    if (host === name || host.endsWith(`.${name}`)) return true
  }
  return false
}

/** Node's Agent callback: on an error the stream argument is not read. */
type ConnectCallback = (err: Error | null, stream: Duplex) => void

/**
 * Opens a CONNECT tunnel through `proxyUrl` to `host:port`, then (for https) TLS inside it. Node's
 * Agent accepts an asynchronous createConnection (the callback form), so pooled keep-alive
 * connections work through the tunnel as they do without it.
 */
function tunnelConnect(
  proxyUrl: URL,
  target: { host: string; port: number; servername?: string },
  targetTls: SecureModules | undefined,
  proxyTls: SecureModules | undefined,
  tlsOpts: tls.ConnectionOptions,
  timeoutMs: number,
  cb: ConnectCallback,
): void {
  const authority = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`
  const headers: Record<string, string> = { host: authority }
  if (proxyUrl.username)
    headers['proxy-authorization'] =
      `Basic ${Buffer.from(`${decodeURIComponent(proxyUrl.username)}:${decodeURIComponent(proxyUrl.password)}`).toString('base64')}`
  const mod = proxyUrl.protocol === 'https:' ? proxyTls!.https : plainHttp!
  const req = mod.request({
    host: proxyUrl.hostname.replace(/^\[|\]$/g, ''),
    port: proxyUrl.port || (proxyUrl.protocol === 'https:' ? 443 : 80),
    method: 'CONNECT',
    path: authority,
    headers,
    agent: false,
    timeout: timeoutMs,
  })
  let done = false
  const finish = (err: Error | null, socket?: Duplex): void => {
    if (done) return
    done = true
    cb(err, socket as Duplex)
  }
  req.on('timeout', () => req.destroy(Object.assign(new Error(`proxy ${proxyUrl.host}: CONNECT timed out`), { code: 'ETIMEDOUT' })))
  req.on('error', (e) => finish(e))
  req.on('connect', (res, socket: net.Socket, head) => {
    socket.setTimeout(0)
    if (res.statusCode !== 200) {
      socket.destroy()
      finish(
        Object.assign(new Error(`proxy ${proxyUrl.host} refused CONNECT ${authority}: ${res.statusCode} ${res.statusMessage ?? ''}`.trim()), {
          code: 'EPROXY',
        }),
      )
      return
    }
    if (head.length) socket.unshift(head)
    if (!targetTls) {
      finish(null, socket)
      return
    }
    const t = targetTls.tls.connect({ ...tlsOpts, socket, servername: target.servername })
    t.once('secureConnect', () => finish(null, t))
    t.once('error', (e) => finish(e))
  })
  req.end()
}

/** The agents of one registry connection: direct or tunnelled, one per scheme, created on first use. */
export class HttpPool {
  readonly #opts: HttpOptions
  readonly #agents = new Map<string, http.Agent>()

  constructor(opts: HttpOptions) {
    this.#opts = opts
  }

  #tlsOptions(sec: SecureModules | undefined): tls.ConnectionOptions {
    const t = this.#opts.tls
    const ca = sec ? caList(t.ca, sec.tls) : undefined
    return { rejectUnauthorized: t.rejectUnauthorized, ...(ca ? { ca } : {}), ...(t.cert ? { cert: t.cert, key: t.key } : {}) }
  }

  #proxyFor(url: URL): URL | undefined {
    const p = this.#opts.proxy
    if (!p) return undefined
    const secure = url.protocol === 'https:'
    const proxy = secure ? (p.httpsProxy ?? p.httpProxy) : p.httpProxy
    if (!proxy) return undefined
    const port = url.port || (secure ? '443' : '80')
    if (bypassesProxy(url.hostname, port, p.noProxy)) return undefined
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`)
  }

  /** The agent for `url`; `sec` is given exactly when TLS is involved (an https URL or an https proxy). */
  #agent(url: URL, proxy: URL | undefined, sec: SecureModules | undefined): http.Agent {
    const secure = url.protocol === 'https:'
    const key = `${url.protocol}${proxy ? ` via ${proxy.href}` : ''}`
    const existing = this.#agents.get(key)
    if (existing) return existing
    let agent: http.Agent
    const common = { keepAlive: true, maxSockets: this.#opts.maxConnections, scheduling: 'lifo' as const }
    const tlsOpts = this.#tlsOptions(sec)
    if (proxy) {
      const timeoutMs = this.#opts.timeoutMs
      const Base = secure ? sec!.https.Agent : plainHttp!.Agent
      const tunnel = new (class extends Base {
        override createConnection(options: http.ClientRequestArgs, cb?: ConnectCallback): Duplex | undefined {
          const host = String(options.host ?? url.hostname)
          const servername = (options as { servername?: string }).servername ?? (net.isIP(host) ? undefined : host)
          tunnelConnect(
            proxy,
            { host, port: Number(options.port), ...(servername ? { servername } : {}) },
            secure ? sec : undefined,
            sec,
            tlsOpts,
            timeoutMs,
            cb!,
          )
          return undefined
        }
      })({ ...common, ...(secure ? tlsOpts : {}) })
      agent = tunnel
    } else {
      agent = secure ? new sec!.https.Agent({ ...common, ...tlsOpts }) : new plainHttp!.Agent(common)
    }
    this.#agents.set(key, agent)
    return agent
  }

  /** One request; resolves with the response at its headers (the body still to read). */
  async request(method: string, url: string, headers: Record<string, string>, body: Buffer | Readable | undefined): Promise<Response> {
    const u = new URL(url)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      if (body && !Buffer.isBuffer(body)) body.destroy()
      throw new Error(`unsupported URL scheme ${u.protocol}`)
    }
    const proxy = this.#proxyFor(u)
    const sec = u.protocol === 'https:' || proxy?.protocol === 'https:' ? secureModules() : undefined
    const plain = httpModule() // also what a proxy's CONNECT goes through
    const mod = u.protocol === 'https:' ? sec!.https : plain
    const agent = this.#agent(u, proxy, sec)
    const timeoutMs = this.#opts.timeoutMs
    return new Promise<Response>((resolve, reject) => {
      const req = mod.request(u, { method, headers, agent, timeout: timeoutMs })
      let response: http.IncomingMessage | undefined
      // What the request is doing, for the timeout's message (the user learns what stalled).
      let phase = 'connecting'
      let headersDeadline: NodeJS.Timeout | undefined
      const seconds = `${(timeoutMs / 1000).toFixed(1)} s`
      const fail = (what: string): void => {
        const err = Object.assign(new Error(`timed out ${what}`), { code: 'ETIMEDOUT' })
        response?.destroy(err)
        req.destroy(err)
      }
      // The request's inactivity timeout keeps watching the socket while either body streams:
      // a stalled upload or download fails with this error instead of hanging the copy.
      req.on('timeout', () => fail(`${phase} (idle for ${seconds})`))
      req.on('socket', (s: net.Socket) => {
        if (!s.connecting) {
          phase = 'sending the request'
          return
        }
        s.once('connect', () => {
          if (phase === 'connecting') phase = 'sending the request'
        })
      })
      req.on('finish', () => {
        if (response) return // answered before the upload ended (an early refusal)
        phase = 'waiting for the response headers'
        // Twice the idle timeout, so that a peer silent from the start is reported as idle.
        headersDeadline = setTimeout(
          () => fail(`waiting for the response headers (not complete after ${((2 * timeoutMs) / 1000).toFixed(1)} s)`),
          2 * timeoutMs,
        )
      })
      req.on('close', () => clearTimeout(headersDeadline))
      req.on('error', (e) => {
        if (body && !Buffer.isBuffer(body)) body.destroy()
        reject(e)
      })
      req.on('response', (res) => {
        clearTimeout(headersDeadline)
        phase = 'reading the response body'
        response = res
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res })
      })
      if (body === undefined || Buffer.isBuffer(body)) {
        req.end(body)
        return
      }
      // A failing body stream aborts the request: the peer sees a short body, never a complete one.
      body.once('error', (e) => req.destroy(e))
      body.once('close', () => {
        if (!body.readableEnded) req.destroy(Object.assign(new Error('request body closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }))
      })
      // A blob read from a layout comes in blocks of the block pool: back to the pool once written.
      pipeReturningBlocks(body, req)
    })
  }

  close(): void {
    for (const a of this.#agents.values()) a.destroy()
    this.#agents.clear()
  }
}

/**
 * Read and discard up to `limit` bytes of a body so its connection can be reused; a longer body
 * drops the connection. Resolves once the body ended, failed or closed, never rejects. With
 * listeners rather than an async iterator: most bodies drained are empty (HEAD, 202, 201), and
 * every request of a push waits for one.
 */
export function drainResponse(res: Response, limit = 256 * 1024): Promise<void> {
  const body = res.body
  if (body.readableEnded || body.destroyed) return Promise.resolve()
  return new Promise<void>((resolve) => {
    let n = 0
    const done = (): void => {
      body.off('data', onData)
      body.off('end', done)
      body.off('close', done)
      resolve() // the error listener stays: a late error of a drained body is nobody's business
    }
    const onData = (c: Buffer): void => {
      n += c.length
      if (n > limit) {
        body.destroy()
        done()
      }
    }
    body.on('data', onData)
    body.once('end', done)
    body.once('error', done)
    body.once('close', done)
    body.resume() // a listener alone does not restart a body that was paused
  })
}
