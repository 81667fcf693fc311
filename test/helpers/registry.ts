/**
 * A real CNCF distribution registry (`docker-registry` from Debian) for tests: 127.0.0.1 on a
 * free port, a temp storage dir, a generated config.yml with deletes enabled, optionally
 * htpasswd basic auth (bcrypt file made by `htpasswd -Bbn`) or bearer-token auth pointing at a
 * token server (test/helpers/token-server.ts). Reused by the copy-matrix tests.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, promises as fsp } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ownedTempDir } from '../fixtures/owned-temp-dir.js'

export const REGISTRY_BINARY = process.env.LADING_REGISTRY_BINARY ?? '/usr/bin/docker-registry'

export function registryAvailable(): boolean {
  return existsSync(REGISTRY_BINARY)
}

/** Reason to skip, or undefined. In CI (CI=true) a missing tool is a failure, not a skip. */
export function registryMissing(): string | undefined {
  if (registryAvailable()) return undefined
  if (process.env.CI === 'true') throw new Error(`${REGISTRY_BINARY} is required in CI`)
  return `docker-registry not installed (${REGISTRY_BINARY})`
}

export interface TokenAuthConfig {
  realm: string
  service: string
  issuer: string
  rootCertBundle: string
}

export interface StartRegistryOptions {
  /** Users for htpasswd basic auth. */
  htpasswd?: Array<{ username: string; password: string }>
  /** Bearer token auth (see startTokenServer). */
  token?: TokenAuthConfig
  /** Storage root (default: a fresh temp dir, removed by stop()). */
  storageDir?: string
  /** Serve HTTPS with this certificate and key (PEM files); with clientCas, require client certificates. */
  tls?: { certificate: string; key: string; clientCas?: string[] }
}

export interface RunningRegistry {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string
  /** host:port as used in references, e.g. 127.0.0.1:41234 */
  host: string
  storageDir: string
  /** Captured registry log (stderr), for failing tests. */
  log(): string
  stop(): Promise<void>
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
}

function yamlString(s: string): string {
  return JSON.stringify(s)
}

async function writeConfig(dir: string, port: number, storage: string, opts: StartRegistryOptions): Promise<string> {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${yamlString(storage)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: lading-test-secret',
  ]
  if (opts.tls) {
    lines.push('  tls:', `    certificate: ${yamlString(opts.tls.certificate)}`, `    key: ${yamlString(opts.tls.key)}`)
    if (opts.tls.clientCas?.length) lines.push('    clientcas:', ...opts.tls.clientCas.map((c) => `      - ${yamlString(c)}`))
  }
  if (opts.htpasswd) {
    const file = path.join(dir, 'htpasswd')
    const entries = opts.htpasswd.map((u) => execFileSync('htpasswd', ['-Bbn', u.username, u.password], { encoding: 'utf8' }).trim())
    await fsp.writeFile(file, entries.join('\n') + '\n')
    lines.push('auth:', '  htpasswd:', '    realm: lading-test', `    path: ${yamlString(file)}`)
  } else if (opts.token) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${yamlString(opts.token.realm)}`,
      `    service: ${yamlString(opts.token.service)}`,
      `    issuer: ${yamlString(opts.token.issuer)}`,
      `    rootcertbundle: ${yamlString(opts.token.rootCertBundle)}`,
    )
  }
  const file = path.join(dir, 'config.yml')
  await fsp.writeFile(file, lines.join('\n') + '\n')
  return file
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      return true
    } catch {
      /* not listening yet */
    }
    await sleep(50)
  }
  return false
}

/** Start a registry; resolves once /v2/ answers. Retries on a port lost to a race. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<RunningRegistry> {
  // Config and default storage live as long as the registry, not a test: callers start it in
  // before hooks (where no after can be registered) or with no TestContext, so stop() removes them.
  const tmp = ownedTempDir({ prefix: 'lading-registry-' })
  const dir = tmp.dir
  const storage = opts.storageDir ?? path.join(dir, 'storage')
  await fsp.mkdir(storage, { recursive: true })
  let lastLog = ''
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const config = await writeConfig(dir, port, storage, opts)
    const child = spawn(REGISTRY_BINARY, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] })
    let log = ''
    const onData = (b: Buffer): void => {
      log = (log + b.toString('utf8')).slice(-20_000)
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    const scheme = opts.tls ? 'https' : 'http'
    const url = `${scheme}://127.0.0.1:${port}`
    // fetch() cannot skip verification of the test's self-signed certificate; probe TCP then.
    const ready = opts.tls ? await waitTcp(port, child, 15_000) : await waitReady(url, child, 15_000)
    if (ready) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      return {
        url,
        host: `127.0.0.1:${port}`,
        storageDir: storage,
        log: () => log,
        async stop() {
          if (child.exitCode === null) {
            child.kill('SIGTERM')
            await Promise.race([
              exited,
              sleep(3000).then(() => {
                if (child.exitCode === null) child.kill('SIGKILL')
              }),
            ])
          }
          await tmp.remove()
        },
      }
    }
    lastLog = log
    if (child.exitCode === null) child.kill('SIGKILL')
  }
  await tmp.remove()
  throw new Error(`docker-registry did not start:\n${lastLog}`)
}

async function waitTcp(port: number, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) return true
    await sleep(50)
  }
  return false
}
