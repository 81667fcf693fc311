/**
 * `lading serve`'s configuration: a JSON file (documented in the README) with command-line
 * flags overriding it. JSON rather than YAML: Node parses it, and YAML would need a parser
 * dependency for a dozen keys. Unknown keys are refused, so a typo is an error rather than a
 * silently ignored setting.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { LadingError } from '../errors.js'
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../io/limits.js'
import type { Action } from './api.js'

export interface AccessRule {
  /** Repository names this rule covers: `*` matches any run of characters (including `/`). */
  repository: string
  /** User names; `*` is any authenticated user, `anonymous` is a request without credentials. */
  users: string[]
  actions: Action[]
}

export interface ServeConfig {
  root: string
  listen: string
  tls?: { cert: string; key: string }
  readOnly: boolean
  autoMount: boolean
  chunkMinLength: number
  maxManifestBytes: number
  auth?: {
    /** htpasswd file of bcrypt entries (`htpasswd -B`). */
    htpasswd: string
    realm: string
    /** basic: Basic auth on every request; token: a bearer token service at /auth/token. */
    mode: 'basic' | 'token'
    tokenTtlSeconds: number
    /** Default: every authenticated user may do everything, anonymous nothing. */
    access?: AccessRule[]
  }
  /** untaggedGraceSeconds: drop untagged manifests no tag keeps after this long (absent: never). */
  gc: { intervalSeconds: number; graceSeconds: number; uploadTtlSeconds: number; untaggedGraceSeconds?: number }
  /** `stderr`, `stdout`, `off`, or a file path (appended). */
  accessLog: string
  timeouts: { headersSeconds: number; idleSeconds: number; requestSeconds: number }
  maxHeaderBytes: number
}

export const DEFAULT_CONFIG: Omit<ServeConfig, 'root'> = {
  listen: '127.0.0.1:5000',
  readOnly: false,
  autoMount: true,
  chunkMinLength: 0,
  maxManifestBytes: DEFAULT_MAX_DOCUMENT_BYTES,
  gc: { intervalSeconds: 0, graceSeconds: 3600, uploadTtlSeconds: 86400 },
  accessLog: 'stderr',
  timeouts: { headersSeconds: 20, idleSeconds: 60, requestSeconds: 0 },
  maxHeaderBytes: 16 * 1024,
}

const ACTIONS: readonly Action[] = ['pull', 'push', 'delete']

function bad(file: string, pointer: string, why: string): LadingError {
  return new LadingError('USAGE', `${file}: ${pointer}: ${why}`)
}

type Obj = Record<string, unknown>

function obj(v: unknown, file: string, ptr: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(file, ptr, 'must be an object')
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw bad(file, `${ptr}/${k}`, `unknown setting (known: ${keys.join(', ')})`)
  return v as Obj
}
function str(v: unknown, file: string, ptr: string): string {
  if (typeof v !== 'string' || v === '') throw bad(file, ptr, 'must be a non-empty string')
  return v
}
function num(v: unknown, file: string, ptr: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(file, ptr, 'must be a non-negative number')
  return v
}
function bool(v: unknown, file: string, ptr: string): boolean {
  if (typeof v !== 'boolean') throw bad(file, ptr, 'must be true or false')
  return v
}

/** Parse a config file's text; paths inside are relative to the file's directory. */
export function parseConfig(text: string, file: string): Partial<ServeConfig> {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (e) {
    throw new LadingError('USAGE', `${file}: not valid JSON: ${(e as Error).message}`)
  }
  const base = path.dirname(path.resolve(file))
  const rel = (p: string): string => path.resolve(base, p)
  const o = obj(v, file, '', [
    'root',
    'listen',
    'tls',
    'readOnly',
    'autoMount',
    'chunkMinLength',
    'maxManifestBytes',
    'auth',
    'gc',
    'accessLog',
    'timeouts',
    'maxHeaderBytes',
  ])
  const c: Partial<ServeConfig> = {}
  if (o.root !== undefined) c.root = rel(str(o.root, file, '/root'))
  if (o.listen !== undefined) c.listen = str(o.listen, file, '/listen')
  if (o.tls !== undefined) {
    const t = obj(o.tls, file, '/tls', ['cert', 'key'])
    c.tls = { cert: rel(str(t.cert, file, '/tls/cert')), key: rel(str(t.key, file, '/tls/key')) }
  }
  if (o.readOnly !== undefined) c.readOnly = bool(o.readOnly, file, '/readOnly')
  if (o.autoMount !== undefined) c.autoMount = bool(o.autoMount, file, '/autoMount')
  if (o.chunkMinLength !== undefined) c.chunkMinLength = num(o.chunkMinLength, file, '/chunkMinLength')
  if (o.maxManifestBytes !== undefined) c.maxManifestBytes = num(o.maxManifestBytes, file, '/maxManifestBytes')
  if (o.maxHeaderBytes !== undefined) c.maxHeaderBytes = num(o.maxHeaderBytes, file, '/maxHeaderBytes')
  if (o.accessLog !== undefined) {
    const a = str(o.accessLog, file, '/accessLog')
    c.accessLog = a === 'stderr' || a === 'stdout' || a === 'off' ? a : rel(a)
  }
  if (o.gc !== undefined) {
    const g = obj(o.gc, file, '/gc', ['intervalSeconds', 'graceSeconds', 'uploadTtlSeconds', 'untaggedGraceSeconds'])
    c.gc = {
      intervalSeconds: g.intervalSeconds === undefined ? DEFAULT_CONFIG.gc.intervalSeconds : num(g.intervalSeconds, file, '/gc/intervalSeconds'),
      graceSeconds: g.graceSeconds === undefined ? DEFAULT_CONFIG.gc.graceSeconds : num(g.graceSeconds, file, '/gc/graceSeconds'),
      uploadTtlSeconds: g.uploadTtlSeconds === undefined ? DEFAULT_CONFIG.gc.uploadTtlSeconds : num(g.uploadTtlSeconds, file, '/gc/uploadTtlSeconds'),
    }
    if (g.untaggedGraceSeconds !== undefined) c.gc.untaggedGraceSeconds = num(g.untaggedGraceSeconds, file, '/gc/untaggedGraceSeconds')
  }
  if (o.timeouts !== undefined) {
    const t = obj(o.timeouts, file, '/timeouts', ['headersSeconds', 'idleSeconds', 'requestSeconds'])
    const d = DEFAULT_CONFIG.timeouts
    c.timeouts = {
      headersSeconds: t.headersSeconds === undefined ? d.headersSeconds : num(t.headersSeconds, file, '/timeouts/headersSeconds'),
      idleSeconds: t.idleSeconds === undefined ? d.idleSeconds : num(t.idleSeconds, file, '/timeouts/idleSeconds'),
      requestSeconds: t.requestSeconds === undefined ? d.requestSeconds : num(t.requestSeconds, file, '/timeouts/requestSeconds'),
    }
  }
  if (o.auth !== undefined) {
    const a = obj(o.auth, file, '/auth', ['htpasswd', 'realm', 'mode', 'tokenTtlSeconds', 'access'])
    const mode = a.mode === undefined ? 'basic' : str(a.mode, file, '/auth/mode')
    if (mode !== 'basic' && mode !== 'token') throw bad(file, '/auth/mode', 'must be "basic" or "token"')
    c.auth = {
      htpasswd: rel(str(a.htpasswd, file, '/auth/htpasswd')),
      realm: a.realm === undefined ? 'lading' : str(a.realm, file, '/auth/realm'),
      mode,
      tokenTtlSeconds: a.tokenTtlSeconds === undefined ? 300 : num(a.tokenTtlSeconds, file, '/auth/tokenTtlSeconds'),
    }
    if (a.access !== undefined) {
      if (!Array.isArray(a.access)) throw bad(file, '/auth/access', 'must be an array of rules')
      c.auth.access = a.access.map((r: unknown, i) => {
        const ptr = `/auth/access/${i}`
        const ro = obj(r, file, ptr, ['repository', 'users', 'actions'])
        const users = ro.users
        const actions = ro.actions
        if (!Array.isArray(users) || users.some((u) => typeof u !== 'string' || u === '')) throw bad(file, `${ptr}/users`, 'must be an array of user names')
        if (!Array.isArray(actions) || actions.some((x) => !ACTIONS.includes(x as Action)))
          throw bad(file, `${ptr}/actions`, `must be an array of ${ACTIONS.join(', ')}`)
        return { repository: str(ro.repository, file, `${ptr}/repository`), users: users as string[], actions: actions as Action[] }
      })
    }
  }
  return c
}

export function loadConfigFile(file: string): Partial<ServeConfig> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new LadingError('USAGE', `${file}: cannot read the config file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  return parseConfig(text, file)
}

/** host:port (IPv6 in brackets). */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s)
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) throw new LadingError('USAGE', `invalid listen address ${JSON.stringify(s)}: expected HOST:PORT (e.g. 127.0.0.1:5000)`)
  return { host: m[1] ?? m[2]!, port }
}
