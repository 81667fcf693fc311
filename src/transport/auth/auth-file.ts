/**
 * Auth files: docker's `~/.docker/config.json` and containers' `auth.json` share one shape,
 * `{ "auths": { "<registry>": { "auth": base64("user:pass") } }, "credHelpers": {...}, "credsStore": "..." }`.
 * Reading is lenient about unknown fields (other tools keep their own settings in these files)
 * and strict about the ones we use; writing preserves everything else and is atomic with mode
 * 0600 (the file holds passwords).
 */
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { LadingError, isErrno } from '../../errors.js'
import { atomicWriteFile } from '../../io/fs.js'
import { normalizeAuthKey } from '../docker-reference.js'

export interface AuthEntry {
  auth?: string
  identitytoken?: string
  username?: string
  password?: string
}
export interface AuthFile {
  auths?: Record<string, AuthEntry>
  credHelpers?: Record<string, string>
  credsStore?: string
  [other: string]: unknown
}

export interface Credentials {
  username: string
  password: string
  /**
   * An OAuth2 refresh token (docker's `identitytoken`, or a helper's `<token>` user): exchanged
   * at the token realm with grant_type=refresh_token instead of basic credentials.
   */
  identityToken?: string
}

/** The environment paths are computed from (tests pass their own). */
export interface AuthEnv {
  env?: NodeJS.ProcessEnv
  homeDir?: string
}

const MAX_AUTH_FILE = 1024 * 1024

function home(e: AuthEnv): string {
  return e.homeDir ?? e.env?.HOME ?? os.homedir()
}
function envOf(e: AuthEnv): NodeJS.ProcessEnv {
  return e.env ?? process.env
}

/**
 * The file `lading login` writes to (skopeo's choice): --authfile, else $REGISTRY_AUTH_FILE,
 * else ${XDG_RUNTIME_DIR}/containers/auth.json, else ~/.config/containers/auth.json.
 */
export function defaultAuthFilePath(authFile: string | undefined, e: AuthEnv = {}): string {
  if (authFile) return authFile
  const env = envOf(e)
  if (env.REGISTRY_AUTH_FILE) return env.REGISTRY_AUTH_FILE
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json')
  return path.join(home(e), '.config', 'containers', 'auth.json')
}

/**
 * Files consulted for credentials, first match wins (containers/image's order): the login file
 * (see defaultAuthFilePath), ~/.config/containers/auth.json, then docker's ~/.docker/config.json
 * ($DOCKER_CONFIG/config.json when set).
 */
export function authFileSearchPath(authFile: string | undefined, e: AuthEnv = {}): string[] {
  const env = envOf(e)
  const files = [defaultAuthFilePath(authFile, e), path.join(home(e), '.config', 'containers', 'auth.json')]
  files.push(env.DOCKER_CONFIG ? path.join(env.DOCKER_CONFIG, 'config.json') : path.join(home(e), '.docker', 'config.json'))
  return [...new Set(files)]
}

/** Read and check an auth file; undefined if it does not exist. */
export async function readAuthFile(file: string): Promise<AuthFile | undefined> {
  let bytes: Buffer
  try {
    const st = await fsp.stat(file)
    if (st.size > MAX_AUTH_FILE) throw new LadingError('SIZE_LIMIT', `auth file ${file}: larger than ${MAX_AUTH_FILE} bytes`)
    bytes = await fsp.readFile(file)
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined
    throw e
  }
  if (bytes.length === 0) return {}
  let v: unknown
  try {
    v = JSON.parse(bytes.toString('utf8'))
  } catch (e) {
    throw new LadingError('INVALID_JSON', `auth file ${file}: not valid JSON: ${(e as Error).message}`, { cause: e })
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new LadingError('INVALID_JSON', `auth file ${file}: expected a JSON object`)
  const f = v as AuthFile
  const isStringMap = (x: unknown): boolean => typeof x === 'object' && x !== null && !Array.isArray(x) && Object.values(x).every((s) => typeof s === 'string')
  if (f.auths !== undefined && (typeof f.auths !== 'object' || f.auths === null || Array.isArray(f.auths)))
    throw new LadingError('INVALID_JSON', `auth file ${file}: /auths: expected an object`)
  if (f.credHelpers !== undefined && !isStringMap(f.credHelpers))
    throw new LadingError('INVALID_JSON', `auth file ${file}: /credHelpers: expected an object of strings`)
  if (f.credsStore !== undefined && typeof f.credsStore !== 'string') throw new LadingError('INVALID_JSON', `auth file ${file}: /credsStore: expected a string`)
  return f
}

/** Decode an `auth` field (base64 of `user:password`). */
export function decodeAuth(auth: string, where: string): Credentials {
  const text = Buffer.from(auth, 'base64').toString('utf8')
  const i = text.indexOf(':')
  if (i < 0) throw new LadingError('INVALID_JSON', `${where}: "auth" is not base64 of user:password`)
  return { username: text.slice(0, i), password: text.slice(i + 1) }
}

export function encodeAuth(c: Credentials): string {
  return Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')
}

/** The `auths` entry for a registry: exact key first, then keys that normalise to it. */
export function findAuthEntry(f: AuthFile, registry: string): { key: string; entry: AuthEntry } | undefined {
  const auths = f.auths ?? {}
  if (Object.hasOwn(auths, registry)) return { key: registry, entry: auths[registry]! }
  for (const [key, entry] of Object.entries(auths)) {
    if (normalizeAuthKey(key) === registry) return { key, entry }
  }
  return undefined
}

/** Credentials stored inline in an entry (not helper-based). */
export function entryCredentials(entry: AuthEntry, where: string): Credentials | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
    const user = typeof entry.auth === 'string' && entry.auth !== '' ? decodeAuth(entry.auth, where).username : ''
    return { username: user, password: '', identityToken: entry.identitytoken }
  }
  if (typeof entry.auth === 'string' && entry.auth !== '') return decodeAuth(entry.auth, where)
  if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password }
  return undefined
}

/** Read-modify-write an auth file atomically with mode 0600 (its directory 0700 when created). */
export async function updateAuthFile(file: string, fn: (f: AuthFile) => AuthFile): Promise<void> {
  const current = (await readAuthFile(file)) ?? {}
  const next = fn(current)
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  await atomicWriteFile(file, JSON.stringify(next, null, '\t') + '\n', 0o600)
}

/** Store credentials for a registry (the `lading login` write). */
export async function storeCredentials(file: string, registry: string, c: Credentials): Promise<void> {
  await updateAuthFile(file, (f) => {
    const auths = { ...(f.auths ?? {}) }
    for (const key of Object.keys(auths)) if (key !== registry && normalizeAuthKey(key) === registry) delete auths[key]
    auths[registry] = { auth: encodeAuth(c) }
    return { ...f, auths }
  })
}

/** Remove a registry's credentials; false when there were none in this file. */
export async function removeCredentials(file: string, registry: string): Promise<boolean> {
  const f = await readAuthFile(file)
  if (!f?.auths) return false
  const keys = Object.keys(f.auths).filter((k) => k === registry || normalizeAuthKey(k) === registry)
  if (keys.length === 0) return false
  await updateAuthFile(file, (cur) => {
    const auths = { ...(cur.auths ?? {}) }
    for (const k of keys) delete auths[k]
    return { ...cur, auths }
  })
  return true
}

/** Remove every registry's credentials (`lading logout --all`); false when the file had none. */
export async function removeAllCredentials(file: string): Promise<boolean> {
  const f = await readAuthFile(file)
  if (!f?.auths || Object.keys(f.auths).length === 0) return false
  await updateAuthFile(file, (cur) => ({ ...cur, auths: {} }))
  return true
}
