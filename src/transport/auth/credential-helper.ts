/**
 * docker credential helpers (docker-credential-helpers protocol): `docker-credential-<name> get`
 * reads the server URL on stdin and prints `{"ServerURL","Username","Secret"}`; `store` reads
 * that object; `erase` reads the server URL; `list` prints `{ServerURL: Username}`. "not found"
 * is reported on stdout/stderr with a non-zero exit. The helper name comes from a config file, so
 * it must be a plain name (no path separators): it is looked up on PATH and nowhere else.
 */
import { spawn } from 'node:child_process'
import { LadingError } from '../../errors.js'
import type { Credentials } from './auth-file.js'

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const MAX_OUTPUT = 64 * 1024

export interface HelperOptions {
  timeoutMs?: number | undefined
  env?: NodeJS.ProcessEnv | undefined
}

/** Run `docker-credential-<helper> get` for `server`; undefined when the helper has no entry. */
export async function helperGet(helper: string, server: string, opts: HelperOptions = {}): Promise<Credentials | undefined> {
  const program = checkedProgram(helper)
  const { code, stdout, stderr } = await run(program, ['get'], server, opts)
  if (code !== 0) {
    if (NOT_FOUND.test(`${stdout} ${stderr}`)) return undefined
    throw new LadingError('UNAUTHORIZED', `${program} get ${server}: exited with ${code}: ${oneLine(stderr || stdout)}`)
  }
  let v: unknown
  try {
    v = JSON.parse(stdout)
  } catch (e) {
    throw new LadingError('INVALID_JSON', `${program} get ${server}: output is not JSON`, { cause: e })
  }
  const o = v as { Username?: unknown; Secret?: unknown }
  if (typeof o !== 'object' || o === null || typeof o.Username !== 'string' || typeof o.Secret !== 'string') {
    throw new LadingError('INVALID_JSON', `${program} get ${server}: expected {"Username","Secret"} strings`)
  }
  if (o.Username === '' && o.Secret === '') return undefined
  // docker-credential-helpers: the user `<token>` marks the secret as an identity token.
  if (o.Username === '<token>') return { username: '', password: '', identityToken: o.Secret }
  return { username: o.Username, password: o.Secret }
}

/** docker-credential-helpers' words for "no such entry" (get and erase). */
const NOT_FOUND = /credentials not found|not found in native keychain|no credentials/i

/** Run `docker-credential-<helper> store` for `server` (lading login with registries.conf helpers). */
export async function helperStore(helper: string, server: string, creds: Credentials, opts: HelperOptions = {}): Promise<void> {
  const program = checkedProgram(helper)
  const { code, stdout, stderr } = await run(program, ['store'], JSON.stringify({ ServerURL: server, Username: creds.username, Secret: creds.password }), opts)
  if (code !== 0) throw new LadingError('UNAUTHORIZED', `${program} store ${server}: exited with ${code}: ${oneLine(stderr || stdout)}`)
}

/** Run `docker-credential-<helper> erase` for `server`; false when the helper had no entry. */
export async function helperErase(helper: string, server: string, opts: HelperOptions = {}): Promise<boolean> {
  const program = checkedProgram(helper)
  const { code, stdout, stderr } = await run(program, ['erase'], server, opts)
  if (code === 0) return true
  if (NOT_FOUND.test(`${stdout} ${stderr}`)) return false
  throw new LadingError('UNAUTHORIZED', `${program} erase ${server}: exited with ${code}: ${oneLine(stderr || stdout)}`)
}

/** Run `docker-credential-<helper> list`: the servers it holds credentials for. */
export async function helperList(helper: string, opts: HelperOptions = {}): Promise<string[]> {
  const program = checkedProgram(helper)
  const { code, stdout, stderr } = await run(program, ['list'], '', opts)
  if (code !== 0) throw new LadingError('UNAUTHORIZED', `${program} list: exited with ${code}: ${oneLine(stderr || stdout)}`)
  let v: unknown
  try {
    v = JSON.parse(stdout)
  } catch (e) {
    throw new LadingError('INVALID_JSON', `${program} list: output is not JSON`, { cause: e })
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new LadingError('INVALID_JSON', `${program} list: expected an object of server URLs`)
  return Object.keys(v)
}

function checkedProgram(helper: string): string {
  if (!HELPER_NAME.test(helper)) throw new LadingError('USAGE', `credential helper ${JSON.stringify(helper)}: not a valid helper name`)
  return `docker-credential-${helper}`
}

function oneLine(s: string): string {
  return s
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .trim()
    .slice(0, 200)
}

function run(program: string, args: string[], input: string, opts: HelperOptions): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let n = 0
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new LadingError('NETWORK', `${program}: no answer within ${opts.timeoutMs ?? 30_000} ms`))
    }, opts.timeoutMs ?? 30_000)
    const collect =
      (into: Buffer[]) =>
      (b: Buffer): void => {
        n += b.length
        if (n > MAX_OUTPUT) {
          child.kill('SIGKILL')
          return
        }
        into.push(b)
      }
    child.stdout.on('data', collect(out))
    child.stderr.on('data', collect(err))
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (e.code === 'ENOENT') reject(new LadingError('NOT_FOUND', `credential helper ${program} not found on PATH`, { cause: e }))
      else reject(e)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      if (n > MAX_OUTPUT) {
        reject(new LadingError('SIZE_LIMIT', `${program}: output larger than ${MAX_OUTPUT} bytes`))
        return
      }
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') })
    })
    child.stdin.on('error', () => {
      /* the helper may exit without reading; its exit code tells */
    })
    child.stdin.end(input)
  })
}
