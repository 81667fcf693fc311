/**
 * `lading serve` for tests: in this process (startServer, for protocol tests) or as the real
 * command in a child process (for signals: SIGKILL, SIGTERM). Both listen on 127.0.0.1, port 0,
 * with a fresh temp root that stop() removes. `request` is a small Node http client that can
 * send what fetch() refuses to (any method, raw header values, bodies that lie about length).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startServer, type RunningServer, type ServerOptions } from '../../src/server/server.js'
import { binPath } from './cli.js'
import { ownedTempDir } from '../fixtures/owned-temp-dir.js'

export interface TestServer {
  url: string
  host: string
  root: string
  server: RunningServer
  stop(): Promise<void>
}

export async function startTestServer(opts: Partial<ServerOptions> & { root?: string } = {}): Promise<TestServer> {
  // Without a root from the caller, the server's root lives as long as the server (callers start it
  // in before hooks, where no after can be registered): stop() removes it.
  const tmp = opts.root ? undefined : ownedTempDir({ prefix: 'lading-serve-' })
  const root = opts.root ?? path.join(tmp!.dir, 'root')
  const server = await startServer({ ...opts, root, listen: { host: '127.0.0.1', port: 0 } })
  return {
    url: server.url,
    host: server.host,
    root,
    server,
    async stop() {
      await server.close(2000)
      await tmp?.remove()
    },
  }
}

export interface ChildServer {
  url: string
  host: string
  root: string
  child: ChildProcess
  log(): string
  /** SIGTERM and wait (SIGKILL after 5 s). */
  stop(): Promise<number | null>
  kill(signal: NodeJS.Signals): Promise<void>
}

/** `lading serve --root ROOT --listen 127.0.0.1:0 ARGS...` as a child; resolves once it prints its URL. */
export async function spawnServer(root: string, args: string[] = []): Promise<ChildServer> {
  const child = spawn(binPath, ['serve', '--root', root, '--listen', '127.0.0.1:0', '--access-log', 'off', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString()
  })
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const deadline = Date.now() + 15_000
  let url: string | undefined
  while (Date.now() < deadline && child.exitCode === null) {
    url = /http:\/\/127\.0\.0\.1:\d+/.exec(out)?.[0]
    if (url) break
    await sleep(20)
  }
  if (!url) {
    child.kill('SIGKILL')
    throw new Error(`lading serve did not start:\n${out}`)
  }
  return {
    url,
    host: url.slice(7),
    root,
    child,
    log: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      const code = await exited
      clearTimeout(t)
      return code
    },
    async kill(signal) {
      if (child.exitCode === null) child.kill(signal)
      await exited
    },
  }
}

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** One request; `body` may be a Buffer or a function that writes to the request itself. */
export function request(
  url: string,
  method: string,
  opts: { headers?: Record<string, string | number>; body?: Buffer | string | ((req: http.ClientRequest) => void); agent?: http.Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // The path goes out exactly as given (new URL() would resolve `..` before it is sent).
    const m = /^http:\/\/([^/:]+):(\d+)(\/.*)$/.exec(url)
    if (!m) throw new Error(`request: unsupported URL ${url}`)
    const req = http.request({ host: m[1], port: Number(m[2]), path: m[3], method, headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (typeof opts.body === 'function') opts.body(req)
    else req.end(opts.body)
  })
}

/** The spec error code of a reply (distribution-spec §Error Codes). */
export function errorCode(r: Reply): string | undefined {
  try {
    return (JSON.parse(r.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code
  } catch {
    return undefined
  }
}
