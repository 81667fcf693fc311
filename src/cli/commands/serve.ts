/**
 * `lading serve --root DIR`: an OCI distribution-spec v1.1 registry (src/server/). Settings come
 * from `--config FILE` (JSON, see README) with flags overriding it. Prints one line with the URL
 * once listening; SIGTERM or SIGINT closes gracefully (requests in flight finish, new ones get
 * 503), a second signal exits at once.
 */
import type { Command } from 'commander'
import { parseDuration, usage } from '../util.js'

interface ServeFlags {
  root?: string
  listen?: string
  config?: string
  tlsCert?: string
  tlsKey?: string
  readOnly?: boolean
  autoMount?: boolean
  htpasswd?: string
  authMode?: string
  realm?: string
  gcInterval?: string
  gcGrace?: string
  uploadTtl?: string
  gcUntagged?: string
  accessLog?: string
  chunkMinLength?: string
}

function seconds(s: string, what: string): number {
  try {
    return parseDuration(s) / 1000
  } catch (e) {
    throw usage(`${what}: ${(e as Error).message}`)
  }
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve OCI image layouts as a registry (OCI distribution-spec v1.1)')
    .option('--root <dir>', 'storage directory: repository a/b is the OCI layout DIR/a/b')
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:5000; port 0 picks a free port)')
    .option('--config <file>', 'JSON configuration file (flags override it)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (with --tls-key)')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--read-only', 'refuse pushes and deletes (405)')
    .option('--no-auto-mount', 'mount a blob only from the repository named by ?from=')
    .option('--htpasswd <file>', 'require authentication: users from this bcrypt htpasswd file')
    .option('--auth-mode <mode>', 'basic (default) or token (bearer tokens from /auth/token)')
    .option('--realm <name>', 'authentication realm / token service name (default lading)')
    .option('--gc-interval <duration>', 'run garbage collection this often (e.g. 10m; default never)')
    .option('--gc-grace <duration>', 'keep unreferenced blobs younger than this (default 1h)')
    .option('--upload-ttl <duration>', 'remove upload sessions idle this long (default 24h)')
    .option('--gc-untagged <duration>', 'gc also drops untagged manifests no tag keeps, pushed longer ago than this (default: keep them)')
    .option('--access-log <where>', 'stderr (default), stdout, off, or a file to append JSON lines to')
    .option('--chunk-min-length <bytes>', 'announce OCI-Chunk-Min-Length on upload sessions')
    .action(async (flags: ServeFlags) => {
      const { DEFAULT_CONFIG, loadConfigFile, parseListen } = await import('../../server/config.js')
      const fromFile = flags.config ? loadConfigFile(flags.config) : {}
      const c = { ...DEFAULT_CONFIG, ...fromFile }
      const root = flags.root ?? fromFile.root
      if (!root) throw usage('--root is required (or "root" in --config)')
      if (flags.listen) c.listen = flags.listen
      if (flags.tlsCert || flags.tlsKey) {
        if (!flags.tlsCert || !flags.tlsKey) throw usage('--tls-cert and --tls-key go together')
        c.tls = { cert: flags.tlsCert, key: flags.tlsKey }
      }
      if (flags.readOnly) c.readOnly = true
      if (flags.autoMount === false) c.autoMount = false
      if (flags.htpasswd) {
        const mode = flags.authMode ?? c.auth?.mode ?? 'basic'
        if (mode !== 'basic' && mode !== 'token') throw usage('--auth-mode must be basic or token')
        c.auth = { realm: 'lading', tokenTtlSeconds: 300, ...c.auth, htpasswd: flags.htpasswd, mode }
      } else if (flags.authMode) {
        if (!c.auth) throw usage('--auth-mode needs --htpasswd (or "auth" in --config)')
        if (flags.authMode !== 'basic' && flags.authMode !== 'token') throw usage('--auth-mode must be basic or token')
        c.auth = { ...c.auth, mode: flags.authMode }
      }
      if (flags.realm && c.auth) c.auth = { ...c.auth, realm: flags.realm }
      c.gc = { ...c.gc }
      if (flags.gcInterval) c.gc.intervalSeconds = seconds(flags.gcInterval, '--gc-interval')
      if (flags.gcGrace) c.gc.graceSeconds = seconds(flags.gcGrace, '--gc-grace')
      if (flags.uploadTtl) c.gc.uploadTtlSeconds = seconds(flags.uploadTtl, '--upload-ttl')
      if (flags.gcUntagged) c.gc.untaggedGraceSeconds = seconds(flags.gcUntagged, '--gc-untagged')
      if (flags.accessLog) c.accessLog = flags.accessLog
      if (flags.chunkMinLength) {
        if (!/^\d{1,12}$/.test(flags.chunkMinLength)) throw usage('--chunk-min-length must be a number of bytes')
        c.chunkMinLength = Number(flags.chunkMinLength)
      }
      const listen = parseListen(c.listen)

      const { createWriteStream } = await import('node:fs')
      const accessLog =
        c.accessLog === 'off'
          ? undefined
          : c.accessLog === 'stderr'
            ? process.stderr
            : c.accessLog === 'stdout'
              ? process.stdout
              : createWriteStream(c.accessLog, { flags: 'a' }).on('error', (e) => {
                  // A log that cannot be written (disk full, removed directory) must not stop the registry.
                  process.stderr.write(`lading: serve: access log ${c.accessLog}: ${e.message}\n`)
                })
      let auth
      if (c.auth) {
        const { RegistryAuth } = await import('../../server/auth.js')
        auth = new RegistryAuth({
          htpasswdFile: c.auth.htpasswd,
          realm: c.auth.realm,
          mode: c.auth.mode,
          tokenTtlSeconds: c.auth.tokenTtlSeconds,
          ...(c.auth.access ? { access: c.auth.access } : {}),
        })
      }
      const { startServer } = await import('../../server/server.js')
      const server = await startServer({
        root,
        listen,
        ...(c.tls ? { tls: { certFile: c.tls.cert, keyFile: c.tls.key } } : {}),
        readOnly: c.readOnly,
        autoMount: c.autoMount,
        chunkMinLength: c.chunkMinLength,
        maxManifestBytes: c.maxManifestBytes,
        ...(auth ? { auth } : {}),
        gc: {
          intervalMs: c.gc.intervalSeconds * 1000,
          graceMs: c.gc.graceSeconds * 1000,
          uploadTtlMs: c.gc.uploadTtlSeconds * 1000,
          ...(c.gc.untaggedGraceSeconds !== undefined ? { untaggedGraceMs: c.gc.untaggedGraceSeconds * 1000 } : {}),
        },
        ...(accessLog ? { accessLog } : {}),
        onInternalError: (e) =>
          process.stderr.write(`lading: serve: internal error: ${e instanceof Error ? (process.env.LADING_DEBUG === '1' ? e.stack : e.message) : String(e)}\n`),
        maxHeaderBytes: c.maxHeaderBytes,
        headersTimeoutMs: c.timeouts.headersSeconds * 1000,
        idleTimeoutMs: c.timeouts.idleSeconds * 1000,
        requestTimeoutMs: c.timeouts.requestSeconds * 1000,
      })
      process.stdout.write(`lading: serving ${server.storage.root} at ${server.url}\n`)
      // SIGTERM/SIGINT are claimed from the CLI's interrupt handler (src/io/cleanup.ts): the
      // server drains instead of being interrupted; a second signal exits at once.
      const { claimSignals } = await import('../../io/cleanup.js')
      await new Promise<void>((resolve) => {
        let stopping = false
        claimSignals(() => {
          if (stopping) process.exit(1)
          stopping = true
          server.close().then(resolve, resolve)
        })
      })
    })
}
