/**
 * An HTTP proxy in front of a registry that injects faults into matching requests: connection
 * resets, error statuses (500, 429 with Retry-After), a flipped byte in a response body, and a
 * body cut midway (headers promise the full length, the socket dies after N bytes). It forwards
 * the Host header unchanged so the registry's Location URLs point back at the proxy, and it
 * records every request (method, path, Range) for assertions.
 */
import http from 'node:http'
import { listenOnLoopback } from './loopback.js'

export type Fault =
  | { kind: 'reset' }
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'flip-byte'; offset?: number }
  /** Send the headers and `after` bytes of the body, then close the connection. */
  | { kind: 'cut'; after: number }
  /** Forward the request (the registry acts on it) but lose the response: reset the connection. */
  | { kind: 'drop-response' }
  /** Forward without the Range header, so the registry answers 200 with the whole body. */
  | { kind: 'ignore-range' }
  /** Forward, then point the response's Location at another origin (keeping path and query). */
  | { kind: 'rewrite-location'; origin: string }
  /** Answer 307 to `location` (another origin, e.g. a blob store) instead of forwarding. */
  | { kind: 'redirect'; location: string }
  /** Read the request and answer nothing, keeping the (kept-alive) connection open. */
  | { kind: 'silence' }
  /** Send the start of a status line and headers, then nothing, keeping the connection open. */
  | { kind: 'stall-headers' }
  /** Send a header byte every `everyMs`, forever: the socket is never idle, the headers never end. */
  | { kind: 'trickle-headers'; everyMs: number }
  /** Forward the headers and `after` bytes of the body, then nothing, keeping the connection open. */
  | { kind: 'stall-body'; after: number }

export interface FaultRule {
  method?: string
  /** Matched against the request path (with query). */
  path: RegExp
  fault: Fault
  /** How many matching requests get the fault (default 1). */
  times?: number
}

export interface ProxiedRequest {
  method: string
  path: string
  range?: string
  authorization: boolean
  fault?: Fault['kind']
  /** Which client connection carried it (1, 2, ... in order of arrival): equal numbers mean a reused keep-alive connection. */
  connection: number
}

export interface FaultProxy {
  url: string
  host: string
  requests: ProxiedRequest[]
  addFault(rule: FaultRule): void
  /** Faults still waiting to fire. */
  pending(): number
  stop(): Promise<void>
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target)
  const rules: Array<FaultRule & { left: number }> = []
  const requests: ProxiedRequest[] = []
  const agent = new http.Agent({ keepAlive: true })
  const connectionIds = new WeakMap<object, number>()
  let connections = 0

  const server = http.createServer((req, res) => {
    const p = req.url ?? '/'
    const rule = rules.find((r) => r.left > 0 && (!r.method || r.method === req.method) && r.path.test(p))
    if (rule) rule.left--
    const fault = rule?.fault
    if (!connectionIds.has(req.socket)) connectionIds.set(req.socket, ++connections)
    requests.push({
      method: req.method ?? '',
      path: p,
      connection: connectionIds.get(req.socket)!,
      authorization: req.headers.authorization !== undefined,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(fault ? { fault: fault.kind } : {}),
    })
    if (fault?.kind === 'reset') {
      req.socket.resetAndDestroy()
      return
    }
    if (fault?.kind === 'silence') {
      req.resume()
      return
    }
    if (fault?.kind === 'stall-headers' || fault?.kind === 'trickle-headers') {
      req.resume()
      // Raw bytes on the socket: node:http's response object would not send half a header.
      req.socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.man')
      if (fault.kind === 'trickle-headers') {
        const t = setInterval(() => {
          if (req.socket.destroyed) clearInterval(t)
          else req.socket.write('i')
        }, fault.everyMs)
        req.socket.once('close', () => clearInterval(t))
      }
      return
    }
    if (fault?.kind === 'redirect') {
      req.resume()
      res.writeHead(307, { location: fault.location, 'content-length': '0' })
      res.end()
      return
    }
    if (fault?.kind === 'status') {
      req.resume()
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers })
      res.end(JSON.stringify({ errors: [{ code: fault.status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN', message: `injected ${fault.status}` }] }))
      return
    }
    const headers = { ...req.headers }
    if (fault?.kind === 'ignore-range') delete headers.range
    const up = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: p,
        headers,
        agent,
      },
      (ures) => {
        if (fault?.kind === 'drop-response') {
          ures.resume()
          ures.on('end', () => req.socket.resetAndDestroy())
          return
        }
        if (fault?.kind === 'rewrite-location' && typeof ures.headers.location === 'string') {
          const loc = new URL(ures.headers.location, `http://${req.headers.host}`)
          ures.headers.location = `${fault.origin}${loc.pathname}${loc.search}`
        }
        res.writeHead(ures.statusCode ?? 502, ures.headers)
        if (fault?.kind === 'flip-byte') {
          let pos = 0
          const at = fault.offset ?? 0
          ures.on('data', (chunk: Buffer) => {
            if (at >= pos && at < pos + chunk.length) {
              chunk = Buffer.from(chunk)
              chunk[at - pos] = chunk[at - pos]! ^ 0xff
            }
            pos += chunk.length
            res.write(chunk)
          })
          ures.on('end', () => res.end())
          return
        }
        if (fault?.kind === 'cut' || fault?.kind === 'stall-body') {
          // cut: the socket dies after `after` bytes; stall-body: it stays open and says nothing more.
          const cut = fault.kind === 'cut'
          let sent = 0
          ures.on('data', (chunk: Buffer) => {
            if (sent >= fault.after) return
            const part = chunk.subarray(0, fault.after - sent)
            sent += part.length
            res.write(part, () => {
              if (cut && sent >= fault.after) {
                ures.destroy()
                res.socket?.destroy()
              }
            })
          })
          ures.on('end', () => {
            if (cut && sent < fault.after) res.end()
          })
          return
        }
        ures.pipe(res)
      },
    )
    up.on('error', () => {
      res.socket?.destroy()
    })
    req.pipe(up)
  })
  const listening = await listenOnLoopback(server)
  return {
    url: `http://${listening.host}`,
    host: listening.host,
    requests,
    addFault(rule) {
      rules.push({ ...rule, left: rule.times ?? 1 })
    },
    pending() {
      return rules.reduce((n, r) => n + r.left, 0)
    },
    async stop() {
      agent.destroy()
      await listening.stop()
    },
  }
}
