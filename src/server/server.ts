/**
 * The running registry: an http (or https) server around RegistryApi, with the operational
 * endpoints (`/health`, `/metrics`), a JSON-lines access log, online gc on a timer, timeouts for
 * slow or stalled clients, and a graceful close (stop accepting, let requests in flight finish,
 * then close what is left).
 *
 * Hostile-client limits, all Node's own: request headers over `maxHeaderBytes` get 431, a client
 * that takes longer than `headersTimeoutMs` to send its headers is cut off, and a socket silent
 * for `idleTimeoutMs` (a body that stopped arriving) is closed; a chunk cut short this way is
 * truncated away by the upload session (src/store/fs/uploads.ts).
 */
import { readFileSync } from 'node:fs'
import type http from 'node:http'
import type https from 'node:https'
import { createRequire } from 'node:module'
import type net from 'node:net'
import type { Writable } from 'node:stream'
import { RegistryApi, sendError, type Authorizer, type RequestInfo } from './api.js'
import { HttpError } from './errors.js'
import { InFlight, collectOnline, type GcPolicy, type GcRound } from './gc.js'
import { Metrics } from './metrics.js'
import { FsRegistryStorage } from './storage.js'

export interface ServerOptions {
  root: string
  /** host:port; port 0 picks a free one. */
  listen: { host: string; port: number }
  tls?: { certFile: string; keyFile: string }
  readOnly?: boolean
  autoMount?: boolean
  chunkMinLength?: number
  maxManifestBytes?: number
  auth?: Authorizer & { handleToken?: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>; tokenPath?: string }
  /** Online gc; undefined: never on a timer (runGc still works). */
  gc?: GcPolicy & { intervalMs: number }
  /** Where JSON-lines access log records go (undefined: none). */
  accessLog?: Writable
  /** Errors the server did not expect (the CLI prints them); default: none. */
  onInternalError?: (e: unknown) => void
  maxHeaderBytes?: number
  headersTimeoutMs?: number
  idleTimeoutMs?: number
  /** Longest a whole request may take (0: no limit; a slow big upload is bounded by idleTimeoutMs). */
  requestTimeoutMs?: number
}

export interface RunningServer {
  /** http(s)://host:port */
  url: string
  host: string
  port: number
  storage: FsRegistryStorage
  metrics: Metrics
  inFlight: InFlight
  /** One gc round now (also what the timer runs). */
  runGc(policy?: GcPolicy): Promise<GcRound>
  /** Stop accepting, let requests in flight finish (up to `graceMs`), then close the rest. */
  close(graceMs?: number): Promise<void>
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const storage = new FsRegistryStorage(opts.root)
  await storage.init()
  const inFlight = new InFlight()
  const metrics = new Metrics()
  const api = new RegistryApi({
    storage,
    inFlight,
    storageRoot: storage.root,
    readOnly: opts.readOnly ?? false,
    autoMount: opts.autoMount ?? true,
    chunkMinLength: opts.chunkMinLength ?? 0,
    ...(opts.maxManifestBytes !== undefined ? { maxManifestBytes: opts.maxManifestBytes } : {}),
    ...(opts.auth ? { auth: opts.auth } : {}),
  })
  let closing = false
  let active = 0
  let idleResolve: (() => void) | undefined
  let storageBytes = { at: 0, value: 0 }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const t0 = process.hrtime.bigint()
    const info: RequestInfo = { route: 'unknown' }
    active++
    // Counted on the socket (headers included): a 'data' listener on req would start the body
    // flowing before the handler pipes it anywhere.
    const socket = req.socket
    const readBefore = socket.bytesRead
    const isUpload = req.method === 'PATCH' || req.method === 'PUT' || req.method === 'POST'
    if (isUpload) metrics.uploadsInFlight++
    res.on('close', () => {
      active--
      if (isUpload) metrics.uploadsInFlight--
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9
      const status = res.writableFinished ? res.statusCode : 499
      const sent = socket.bytesWritten
      const bytesIn = Math.max(0, socket.bytesRead - readBefore)
      metrics.bytesIn += bytesIn
      metrics.observe(info.route, req.method ?? '', status, seconds)
      if (opts.accessLog) {
        const rec = {
          time: new Date().toISOString(),
          remote: socket.remoteAddress,
          method: req.method,
          path: (req.url ?? '').slice(0, 2048),
          status,
          route: info.route,
          repository: info.repository,
          user: info.user,
          bytes_in: bytesIn,
          bytes_out: Number(res.getHeader('content-length') ?? 0) || sent,
          duration_ms: Math.round(seconds * 1e6) / 1e3,
          user_agent: req.headers['user-agent']?.slice(0, 256),
        }
        opts.accessLog.write(JSON.stringify(rec) + '\n')
      }
      if (active === 0) idleResolve?.()
    })
    res.on('finish', () => {
      metrics.bytesOut += Number(res.getHeader('content-length') ?? 0)
    })
    if (closing) {
      info.route = 'closing'
      res.setHeader('Connection', 'close')
      sendError(req, res, new HttpError(503, 'UNSUPPORTED', 'the registry is shutting down'))
      return
    }
    const p = (req.url ?? '').split('?')[0]
    if (p === '/health' || p === '/healthz') {
      info.route = 'health'
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}')
      return
    }
    if (p === '/metrics') {
      info.route = 'metrics'
      void renderMetrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' }).end(text)
        },
        (e: unknown) => {
          opts.onInternalError?.(e)
          sendError(req, res, new HttpError(500, 'UNSUPPORTED', 'metrics unavailable'))
        },
      )
      return
    }
    const auth = opts.auth
    if (auth?.handleToken && auth.tokenPath !== undefined && p === auth.tokenPath) {
      info.route = 'token'
      auth.handleToken(req, res).catch((e: unknown) => {
        opts.onInternalError?.(e)
        sendError(req, res, new HttpError(500, 'UNSUPPORTED', 'token service failed'))
      })
      return
    }
    api.handle(req, res, info).catch((e: unknown) => {
      opts.onInternalError?.(e)
      sendError(req, res, new HttpError(500, 'UNSUPPORTED', 'internal server error'))
    })
  }

  async function renderMetrics(): Promise<string> {
    if (Date.now() - storageBytes.at > 10_000) storageBytes = { at: Date.now(), value: await storage.contentBytes() }
    return metrics.render({ storageBytes: storageBytes.value, uploadSessions: (await storage.uploads.list()).length })
  }

  const headersTimeout = opts.headersTimeoutMs ?? 20_000
  const serverOpts: http.ServerOptions = {
    maxHeaderSize: opts.maxHeaderBytes ?? 16 * 1024,
    headersTimeout,
    // Node checks for expired header and request timeouts on this interval (default 30 s).
    connectionsCheckingInterval: Math.max(100, Math.min(Math.floor(headersTimeout / 4), 30_000)),
    requestTimeout: opts.requestTimeoutMs ?? 0,
    keepAliveTimeout: 5_000,
  }
  // Loaded here, not at module load: node:http cannot be part of the CLI's start-up snapshot
  // (src/transport/registry/http.ts says why).
  const load = createRequire(import.meta.url)
  const server: http.Server = opts.tls
    ? (load('node:https') as typeof https).createServer({ ...serverOpts, cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) }, handler)
    : (load('node:http') as typeof http).createServer(serverOpts, handler)
  // A socket silent this long (headers or body stopped arriving) is closed.
  server.setTimeout(opts.idleTimeoutMs ?? 60_000, (s: net.Socket) => s.destroy())
  // A malformed request (bad Content-Length, oversized headers) gets Node's own 400/431/408 and
  // its socket closes: no 'clientError' listener, so Node's default answer stands.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  // After listening, a server error (EMFILE on accept, say) is reported, never a crash.
  server.on('error', (e) => opts.onInternalError?.(e))
  const addr = server.address() as net.AddressInfo
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  const host = `${hostForUrl}:${addr.port}`

  let gcTimer: NodeJS.Timeout | undefined
  let gcRunning: Promise<GcRound> | undefined
  const runGc = async (policy?: GcPolicy): Promise<GcRound> => {
    const p = policy ?? opts.gc ?? { graceMs: 60 * 60 * 1000, uploadTtlMs: 24 * 60 * 60 * 1000 }
    while (gcRunning) await gcRunning.catch(() => {})
    gcRunning = collectOnline(storage, inFlight, p)
    try {
      const r = await gcRunning
      metrics.gcRuns++
      metrics.gcBlobsRemoved += r.blobsRemoved.length + r.contentRemoved.length
      return r
    } finally {
      gcRunning = undefined
    }
  }
  if (opts.gc && opts.gc.intervalMs > 0) {
    const tick = (): void => {
      runGc()
        .catch((e: unknown) => opts.onInternalError?.(e))
        .finally(() => {
          if (!closing) {
            gcTimer = setTimeout(tick, opts.gc!.intervalMs)
            gcTimer.unref()
          }
        })
    }
    gcTimer = setTimeout(tick, opts.gc.intervalMs)
    gcTimer.unref()
  }

  return {
    url: `${opts.tls ? 'https' : 'http'}://${host}`,
    host,
    port: addr.port,
    storage,
    metrics,
    inFlight,
    runGc,
    async close(graceMs = 30_000) {
      closing = true
      if (gcTimer) clearTimeout(gcTimer)
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      if (active > 0) {
        await Promise.race([
          new Promise<void>((resolve) => {
            idleResolve = resolve
          }),
          new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
        ])
      }
      server.closeAllConnections()
      await closed
      await gcRunning?.catch(() => {})
    },
  }
}
