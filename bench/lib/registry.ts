/**
 * A throwaway CNCF distribution registry (Debian's /usr/bin/docker-registry) on 127.0.0.1 with its
 * storage in a directory the caller chooses (so it sits on the medium being measured). Plain HTTP;
 * clients need --dest-tls-verify=false / --src-tls-verify=false.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'

export const REGISTRY_BIN = '/usr/bin/docker-registry'

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}`)
    try {
      const res = await fetch(url)
      await res.arrayBuffer()
      if (res.status === 200 || res.status === 401) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`docker-registry did not answer ${url} within ${timeoutMs} ms`)
}

export class Registry {
  #child: ChildProcess | undefined
  #storage: string
  #configFile: string
  #port = 0

  constructor(readonly dir: string) {
    this.#storage = path.join(dir, 'storage')
    this.#configFile = path.join(dir, 'config.yml')
  }

  /** The registry process's pid while started (for its peak RSS in /proc). */
  get pid(): number | undefined {
    return this.#child?.pid
  }

  /** host:port, valid while started. */
  get host(): string {
    return `127.0.0.1:${this.#port}`
  }

  /** Starts on a free port with EMPTY storage (so no blob is already there to mount or skip). */
  async start(): Promise<void> {
    await this.stop()
    rmSync(this.#storage, { recursive: true, force: true })
    mkdirSync(this.#storage, { recursive: true })
    this.#port = await freePort()
    writeFileSync(
      this.#configFile,
      [
        'version: 0.1',
        'log:',
        '  level: error',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${this.#storage}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: 127.0.0.1:${this.#port}`,
        '',
      ].join('\n'),
    )
    const child = spawn(REGISTRY_BIN, ['serve', this.#configFile], { stdio: ['ignore', 'ignore', 'ignore'] })
    this.#child = child
    await waitReady(`http://${this.host}/v2/`, child, 10_000)
  }

  async stop(): Promise<void> {
    const child = this.#child
    this.#child = undefined
    await stopChild(child)
  }
}

/** SIGTERM a server process and wait for it (SIGKILL after `graceMs`). */
export async function stopChild(child: ChildProcess | undefined, graceMs = 3000): Promise<void> {
  if (!child || child.exitCode !== null) return
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), graceMs).unref()
  })
}
