/**
 * `lading run [OPTIONS] IMAGE [CMD [ARG...]]`: an image from the local store (pulled per --pull)
 * to a running container, as podman run does, on runc (src/run). Options after IMAGE belong to
 * the container's command (commander's passThroughOptions, which needs positional options on the
 * program: options of `lading` itself come before `run`).
 *
 * Exit status (podman-run(1)): the container's own; 125 when Lading fails, 126 when the command
 * cannot be invoked, 127 when it is not found; usage errors 2, as every lading command.
 * Terminal (-t): runc's foreground mode makes the pty itself and copies between it and the
 * terminal lading was started on (putting that in raw mode); `--console-socket`, which would need
 * SCM_RIGHTS (Node has none) to receive the pty, is only needed for detached terminals, which
 * are therefore refused (-d with -t).
 */
import type { Command } from 'commander'
import { addStoreOption, openStore, warn, type StoreFlag } from '../store-options.js'
import { collect, usage } from '../util.js'

interface RunFlags extends StoreFlag {
  rm?: boolean
  interactive?: boolean
  tty?: boolean
  detach?: boolean
  name?: string
  env?: string[]
  envFile?: string[]
  user?: string
  workdir?: string
  entrypoint?: string
  volume?: string[]
  tmpfs?: string[]
  readOnly?: boolean
  network?: string
  hostname?: string
  capAdd?: string[]
  capDrop?: string[]
  pull?: string
  init?: boolean
  initPath?: string
  tlsVerify?: string | boolean
  certDir?: string
  creds?: string
  authfile?: string
  debug?: boolean
  quiet?: boolean
}

/** Where Debian's tini package puts its static build (a dynamic init would need the image's libc). */
export const DEFAULT_INIT = '/usr/bin/tini-static'

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH']

export function register(program: Command): void {
  program.enablePositionalOptions()
  addStoreOption(
    program
      .command('run')
      .description('run a command in a new container from an image of the local store (pulled when missing)')
      .argument('<image>', 'image: a name (debian:12, localhost/app), an image id, or any transport reference (oci:DIR:TAG, docker://…)')
      .argument('[command...]', "command and arguments (default: the image's Entrypoint and Cmd)")
      .passThroughOptions()
      .option('--rm', 'remove the container (and its writable layer) when it exits')
      .option('-i, --interactive', 'keep stdin attached')
      .option('-t, --tty', 'give the container a terminal')
      .option('-d, --detach', 'run in the background and print the container id (output goes to lading logs)')
      .option('--name <name>', 'name the container')
      .option('-e, --env <key[=value]>', 'set an environment variable (KEY alone: its value here; repeatable)', collect)
      .option('--env-file <file>', 'read KEY=VALUE lines from a file (repeatable)', collect)
      .option('-u, --user <user[:group]>', 'user (name or id) and group to run as')
      .option('-w, --workdir <dir>', 'working directory inside the container')
      .option('--entrypoint <cmd>', "override the image's entrypoint (a command, or a JSON array)")
      .option('-v, --volume <host:container[:ro]>', 'bind-mount a host path (repeatable)', collect)
      .option('--tmpfs <path>', 'mount a tmpfs at this path (repeatable)', collect)
      .option('--read-only', 'mount the root filesystem read-only')
      .option('--network <mode>', 'none (own network namespace with only lo; the default) or host')
      .option('--hostname <name>', "the container's host name (default: its short id)")
      .option('--cap-add <cap>', 'add a capability (repeatable; ALL for every one)', collect)
      .option('--cap-drop <cap>', 'drop a capability (repeatable; ALL for every one)', collect)
      .option('--pull <policy>', 'missing (default), always or never')
      .option('--init', `run a minimal init as PID 1 that forwards signals and reaps zombies (${DEFAULT_INIT})`)
      .option('--init-path <file>', 'the static init binary for --init')
      .option('--tls-verify [bool]', 'pull: verify TLS; false also allows plain HTTP (default true)')
      .option('--cert-dir <dir>', 'pull: *.crt CAs and *.cert/*.key client certificate')
      .option('--creds <user:pass>', 'pull: registry credentials')
      .option('--authfile <file>', 'pull: auth file')
      .option('-q, --quiet', 'do not report the layers unpacked on stderr')
      .option('--debug', 'print stack traces for errors'),
  ).action(async (image: string, command: string[], f: RunFlags) => {
    let code: number
    try {
      code = await runCommand(image, command, f)
    } catch (e) {
      const { LadingError } = await import('../../errors.js')
      const { CommandError, EXIT_LADING_FAILED } = await import('../../run/run.js')
      if (e instanceof LadingError && e.code === 'USAGE') throw e
      const msg = e instanceof Error ? e.message : String(e)
      process.stderr.write(`lading: ${msg}\n`)
      if ((f.debug || process.env.LADING_DEBUG === '1') && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n')
      code = e instanceof CommandError ? e.exitStatus : EXIT_LADING_FAILED
    }
    process.exit(code)
  })
}

async function runCommand(image: string, command: string[], f: RunFlags): Promise<number> {
  const [{ prepareContainer, finishContainer }, { parsePullPolicy }, { runcRun }, overrides, { registryOptionsFromFlags }, { LOG_FILE }, { runTrace }] =
    await Promise.all([
      import('../../run/run.js'),
      import('../../run/images.js'),
      import('../../run/runc.js'),
      runOverrides(command, f),
      import('../../transport/registry/cli-options.js'),
      import('../../run/containers.js'),
      import('../../run/trace.js'),
    ])
  const trace = runTrace()
  trace('command parsed, modules loaded')
  const pull = parsePullPolicy(f.pull)
  if (f.detach && f.tty) throw usage("-d with -t is not supported: a detached terminal needs runc's --console-socket (see lading run --help)")
  if (f.detach && f.rm) throw usage('-d with --rm is not supported: nothing stays to remove the container when it exits; use lading container rm')
  const store = await openStore(f)
  trace('store opened')
  // Until runc runs, an interrupt stops the preparation (an unpack midway) and removes the
  // container; then lading exits as an interrupted command does.
  const ac = new AbortController()
  let interrupted: NodeJS.Signals | undefined
  const onInterrupt = (sig: NodeJS.Signals): void => {
    interrupted = sig
    ac.abort()
  }
  const { claimSignals } = await import('../../io/cleanup.js')
  const release = claimSignals(onInterrupt)
  let prepared: Awaited<ReturnType<typeof prepareContainer>>
  try {
    prepared = await prepareContainer(store, {
      signal: ac.signal,
      image,
      pull,
      overrides,
      detach: f.detach ?? false,
      remove: f.rm ?? false,
      ...(f.name !== undefined ? { name: f.name } : {}),
      transport: registryOptionsFromFlags({ tlsVerify: f.tlsVerify, certDir: f.certDir, creds: f.creds, authfile: f.authfile }),
      onWarning: warn,
      ...(f.quiet ? {} : { onUnpacked: (diffId: string) => process.stderr.write(`lading: unpacked layer ${diffId}\n`) }),
    })
  } catch (e) {
    if (interrupted) {
      process.stderr.write(`lading: run interrupted by ${interrupted}; the container was removed\n`)
      return interrupted === 'SIGINT' ? 130 : 143
    }
    throw e
  } finally {
    release()
  }
  const { record, bundle } = prepared
  const fs = await import('node:fs')
  const path = await import('node:path')
  if (f.detach) {
    const log = fs.openSync(path.join(bundle, LOG_FILE), 'a', 0o600)
    try {
      const child = runcRun(store.runcRoot, bundle, record.id, { detach: true, stdio: ['ignore', log, log] })
      const status = await exited(child)
      if (status !== 0) {
        process.stderr.write(`lading: runc could not start container ${record.name} (exit ${status}); see ${path.join(bundle, LOG_FILE)}\n`)
        return 125
      }
    } finally {
      fs.closeSync(log)
    }
    process.stdout.write(`${record.id}\n`)
    return 0
  }
  const child = runcRun(store.runcRoot, bundle, record.id, { detach: false, stdio: [f.interactive || f.tty ? 'inherit' : 'ignore', 'inherit', 'inherit'] })
  // runc forwards what it receives to the container's init (runc(8) run: signals are proxied).
  const forward = (sig: NodeJS.Signals): void => {
    child.kill(sig)
  }
  // SIGINT and SIGTERM come through the CLI's handler (claimed); the others straight from Node.
  const releaseClaim = claimSignals(forward)
  const others = FORWARDED.filter((s) => s !== 'SIGINT' && s !== 'SIGTERM')
  for (const s of others) process.on(s, forward)
  trace('runc started')
  let status: number
  try {
    status = await exited(child)
    trace('runc exited')
  } finally {
    releaseClaim()
    for (const s of others) process.off(s, forward)
  }
  await finishContainer(store, record, f.rm ?? false)
  return status
}

/** Resolve with the exit status as a shell reports it (128+N for a signal). */
async function exited(child: import('node:child_process').ChildProcess): Promise<number> {
  const os = await import('node:os')
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0)))
  })
}

async function runOverrides(command: string[], f: RunFlags): Promise<import('../../run/container-spec.js').RunOverrides> {
  const o: import('../../run/container-spec.js').RunOverrides = {}
  if (command.length > 0) o.cmd = command
  if (f.entrypoint !== undefined) o.entrypoint = parseEntrypoint(f.entrypoint)
  const env: string[] = []
  for (const file of f.envFile ?? []) env.push(...(await readEnvFile(file)))
  for (const e of f.env ?? []) env.push(...envEntry(e, '--env'))
  if (env.length > 0) o.env = env
  if (f.user !== undefined) {
    if (f.user === '') throw usage('--user must not be empty')
    o.user = f.user
  }
  if (f.workdir !== undefined) o.workdir = f.workdir
  if (f.hostname !== undefined) o.hostname = f.hostname
  if (f.volume?.length) o.volumes = await Promise.all(f.volume.map(parseVolume))
  if (f.tmpfs?.length) o.tmpfs = f.tmpfs
  if (f.readOnly) o.readOnly = true
  if (f.network !== undefined) {
    if (f.network !== 'none' && f.network !== 'host')
      throw usage(`--network: expected none or host, got ${JSON.stringify(f.network)} (no other networks are set up by lading)`)
    o.network = f.network
  }
  if (f.capAdd?.length) o.capAdd = f.capAdd
  if (f.capDrop?.length) o.capDrop = f.capDrop
  if (f.tty) o.terminal = true
  if (f.init || f.initPath !== undefined) {
    const fs = await import('node:fs')
    const init = f.initPath ?? DEFAULT_INIT
    try {
      fs.accessSync(init, fs.constants.X_OK)
    } catch {
      const { LadingError } = await import('../../errors.js')
      throw new LadingError('NOT_FOUND', `--init: ${init} is not an executable file (Debian: apt-get install tini, or give --init-path)`)
    }
    o.init = init
  }
  return o
}

function parseEntrypoint(s: string): string[] {
  if (s.startsWith('[')) {
    let v: unknown
    try {
      v = JSON.parse(s)
    } catch {
      throw usage(`--entrypoint ${JSON.stringify(s)}: not a JSON array`)
    }
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string')) throw usage('--entrypoint: a JSON array of strings, not empty')
    return v
  }
  return s === '' ? [] : [s]
}

/** `KEY=VALUE`, or `KEY` taking this process's value (left out when it has none), as podman. */
function envEntry(e: string, flag: string): string[] {
  const i = e.indexOf('=')
  const name = i < 0 ? e : e.slice(0, i)
  if (!/^[^=\s]+$/.test(name)) throw usage(`${flag} ${JSON.stringify(e)}: expected KEY=VALUE or KEY`)
  if (i >= 0) return [e]
  const v = process.env[name]
  return v === undefined ? [] : [`${name}=${v}`]
}

async function readEnvFile(file: string): Promise<string[]> {
  const fs = await import('node:fs/promises')
  const st = await fs.stat(file).catch(() => undefined)
  if (!st?.isFile()) throw usage(`--env-file ${file}: not a readable file`)
  if (st.size > 1024 * 1024) throw usage(`--env-file ${file}: larger than 1 MiB`)
  const out: string[] = []
  for (const raw of (await fs.readFile(file, 'utf8')).split('\n')) {
    const line = raw.replace(/\r$/, '').trim()
    if (line === '' || line.startsWith('#')) continue
    out.push(...envEntry(line, `--env-file ${file}:`))
  }
  return out
}

async function parseVolume(s: string): Promise<{ host: string; container: string; readonly: boolean }> {
  const parts = s.split(':')
  if (parts.length < 2 || parts.length > 3 || parts[0] === '' || parts[1] === '') throw usage(`--volume ${JSON.stringify(s)}: expected HOST:CONTAINER[:ro|rw]`)
  const mode = parts[2] ?? 'rw'
  if (mode !== 'ro' && mode !== 'rw') throw usage(`--volume ${JSON.stringify(s)}: the mode must be ro or rw`)
  if (!parts[1]!.startsWith('/')) throw usage(`--volume ${JSON.stringify(s)}: the container path must be absolute`)
  const path = await import('node:path')
  const fs = await import('node:fs/promises')
  const host = path.resolve(parts[0]!)
  if (!(await fs.stat(host).catch(() => undefined))) throw usage(`--volume ${JSON.stringify(s)}: ${host} does not exist`)
  return { host, container: parts[1]!, readonly: mode === 'ro' }
}
