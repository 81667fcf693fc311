/**
 * containers-registries.conf(5), the subset that the docker:// transport of skopeo and
 * containers/image honours: per-registry `[[registry]]` tables that block a registry, mark it
 * insecure, move it to another location (`prefix` -> `location`), and give it pull mirrors
 * (`[[registry.mirror]]`, tried in order before the registry itself). As in containers/image,
 * moving and mirrors apply to pulls only; `blocked` and `insecure` to pushes as well. The root
 * `credential-helpers` list says where credentials are looked up (src/transport/auth/credentials.ts).
 * Short-name resolution (`unqualified-search-registries`, aliases) is not read: a docker://
 * reference is always fully qualified (docker.io is the default), as in skopeo.
 *
 * Files, as containers/image finds them: $CONTAINERS_REGISTRIES_CONF alone when set; else
 * ~/.config/containers/registries.conf when it exists, else /etc/containers/registries.conf,
 * followed by the drop-ins in /etc/containers/registries.conf.d/ and then
 * ~/.config/containers/registries.conf.d/ (`*.conf`, in name order). A `[[registry]]` of a later
 * file replaces an earlier one with the same prefix. The v1 format's `[registries.insecure]` and
 * `[registries.block]` lists are read as insecure and blocked registries.
 *
 * A file with registry settings that is not valid TOML, or whose tables do not have the documented
 * shape, is one error naming the file, never ignored: a mirror or a block that silently does not
 * apply is worse. (A file that mentions no registry settings is not parsed at all.)
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { LadingError, isErrno } from '../errors.js'
import { parseDockerName, type DockerName } from './docker-reference.js'
import type { DockerReference } from './types.js'

/** The one option registries.conf sets on a connection (its `insecure`); any registry options type carries it. */
interface TlsOption {
  tlsVerify?: boolean
}

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only'

export interface MirrorEntry {
  location: string
  insecure: boolean
  pullFromMirror: PullFromMirror
}

export interface RegistryEntry {
  /** What references it applies to: `host[:port][/path]` or `*.domain`. */
  prefix: string
  /** Where those references really live (the prefix is replaced by it); '' keeps the prefix. */
  location: string
  insecure: boolean
  blocked: boolean
  mirrors: MirrorEntry[]
  /** The file it came from, for messages. */
  file: string
}

export interface RegistriesConf {
  registries: RegistryEntry[]
  files: string[]
  /**
   * `credential-helpers`, from the last file that sets it: where credentials are looked up, in
   * order; `containers-auth.json` names the auth files (src/transport/auth/credentials.ts).
   */
  credentialHelpers?: string[]
}

/** Where a reference is fetched from or pushed to, once registries.conf is applied. */
export interface Endpoint {
  ref: DockerReference
  /** true when registries.conf marks it insecure (TLS unverified, plain HTTP allowed). */
  insecure: boolean
  /** A pull mirror (a failure moves on to the next endpoint). */
  mirror: boolean
}

const MAX_CONF_BYTES = 1024 * 1024

export interface ConfEnv {
  env?: NodeJS.ProcessEnv
  home?: string
  systemDir?: string
}

/** The files to read, in order (missing ones are skipped by loadRegistriesConf). */
function confFiles(e: ConfEnv): string[] {
  const env = e.env ?? process.env
  const explicit = env.CONTAINERS_REGISTRIES_CONF
  if (explicit) return [explicit]
  const home = e.home ?? env.HOME ?? os.homedir()
  const systemDir = e.systemDir ?? '/etc/containers'
  const userDir = path.join(home, '.config', 'containers')
  const userMain = path.join(userDir, 'registries.conf')
  const main = fs.existsSync(userMain) ? userMain : path.join(systemDir, 'registries.conf')
  return [main, ...dropIns(path.join(systemDir, 'registries.conf.d')), ...dropIns(path.join(userDir, 'registries.conf.d'))]
}

function dropIns(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.conf'))
      .sort()
      .map((n) => path.join(dir, n))
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return []
    throw new LadingError('INVALID_DOCUMENT', `registries.conf.d ${dir}: ${(e as Error).message}`, { cause: e })
  }
}

const readOnce = new Map<string, RegistriesConf>()

/** This process's registries.conf (per $CONTAINERS_REGISTRIES_CONF and $HOME), read once. */
export function processRegistriesConf(): RegistriesConf {
  const key = `${process.env.CONTAINERS_REGISTRIES_CONF ?? ''}\0${process.env.HOME ?? ''}`
  let conf = readOnce.get(key)
  if (!conf) {
    conf = loadRegistriesConf()
    readOnce.set(key, conf)
  }
  return conf
}

/**
 * Read the registries.conf files that exist (none is an empty configuration). Synchronously:
 * a few small files, read before a registry's first request, which is on the critical path of
 * every docker:// command (asynchronous reads let the command's other work run first).
 */
export function loadRegistriesConf(e: ConfEnv = {}): RegistriesConf {
  const byPrefix = new Map<string, RegistryEntry>()
  const files: string[] = []
  let credentialHelpers: string[] | undefined
  for (const file of confFiles(e)) {
    let text: string
    try {
      const st = fs.statSync(file)
      if (st.size > MAX_CONF_BYTES) throw new LadingError('SIZE_LIMIT', `registries.conf ${file}: larger than ${MAX_CONF_BYTES} bytes`)
      text = fs.readFileSync(file, 'utf8')
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue
      if (err instanceof LadingError) throw err
      throw new LadingError('INVALID_DOCUMENT', `registries.conf ${file}: ${(err as Error).message}`, { cause: err })
    }
    files.push(file)
    const parsed = parseConfFile(text, file)
    for (const entry of parsed.entries) byPrefix.set(entry.prefix, entry)
    // As containers/image: a later file's list replaces an earlier one; an empty list does not.
    if (parsed.credentialHelpers?.length) credentialHelpers = parsed.credentialHelpers
  }
  return { registries: [...byPrefix.values()], files, ...(credentialHelpers ? { credentialHelpers } : {}) }
}

/** A TOML table header line: `[a.b]`, `[[a]]`, quoted keys allowed, then an optional comment. */
const TABLE_HEADER = /^\[\[?[ \t]*(?:[\w-]+|"[^"\n]*"|'[^'\n]*')(?:[ \t]*\.[ \t]*(?:[\w-]+|"[^"\n]*"|'[^'\n]*'))*[ \t]*\]\]?[ \t]*(?:#.*)?$/
const NAMES_REGISTRIES = /^\[?\[?[ \t]*["']?registr(?:y|ies)\b/
/** A root key this module reads besides the registry tables. */
const ROOT_KEY = /^["']?credential-helpers\b/

/**
 * Whether a file can say anything this module reads: a `registry` or `registries` table, or
 * such a key before the first table (TOML puts every later key in a table). The usual files
 * (Debian's commented-out registries.conf, and shortnames.conf, whose `[aliases]` table has a
 * "registry" alias) say nothing of the kind and are not parsed: every docker:// command reads
 * them before its first request. Anything this line scan cannot be sure of (a multi-line
 * string, a line opening with `[` that is no table header) is parsed.
 */
function mentionsRegistries(text: string): boolean {
  if (text.includes('"""') || text.includes("'''")) return true
  let root = true
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (line.startsWith('[')) {
      if (NAMES_REGISTRIES.test(line) || !TABLE_HEADER.test(line)) return true
      root = false
    } else if (root && (NAMES_REGISTRIES.test(line) || ROOT_KEY.test(line))) {
      return true
    }
  }
  return false
}

/** The `[[registry]]` entries of one file (v2), or its v1 insecure and block lists. */
export function parseRegistriesConf(text: string, file: string): RegistryEntry[] {
  return parseConfFile(text, file).entries
}

/** What one file says: its registry entries, and its `credential-helpers` if it sets them. */
export function parseConfFile(text: string, file: string): { entries: RegistryEntry[]; credentialHelpers?: string[] } {
  if (!mentionsRegistries(text)) return { entries: [] }
  const bad = (what: string): LadingError => new LadingError('INVALID_DOCUMENT', `registries.conf ${file}: ${what}`)
  let doc: Record<string, unknown>
  try {
    doc = parseToml(text) as Record<string, unknown>
  } catch (err) {
    throw bad(`not valid TOML: ${(err as Error).message.split('\n')[0]}`)
  }
  const helpers = doc['credential-helpers']
  if (helpers !== undefined && (!Array.isArray(helpers) || helpers.some((h) => typeof h !== 'string' || h === ''))) {
    throw bad('credential-helpers must be a list of helper names')
  }
  const withHelpers = (entries: RegistryEntry[]): { entries: RegistryEntry[]; credentialHelpers?: string[] } =>
    helpers === undefined ? { entries } : { entries, credentialHelpers: helpers as string[] }
  const entries: RegistryEntry[] = []
  const str = (v: unknown, what: string): string => {
    if (v === undefined) return ''
    if (typeof v !== 'string') throw bad(`${what} must be a string`)
    return v
  }
  const bool = (v: unknown, what: string): boolean => {
    if (v === undefined) return false
    if (typeof v !== 'boolean') throw bad(`${what} must be true or false`)
    return v
  }
  const v1 = doc.registries
  if (v1 !== undefined) {
    if (doc.registry !== undefined) throw bad('mixes the v1 [registries.*] tables with v2 [[registry]] tables')
    if (typeof v1 !== 'object' || v1 === null) throw bad('[registries] must be a table')
    const list = (name: string): string[] => {
      const t = (v1 as Record<string, unknown>)[name]
      if (t === undefined) return []
      const r = (t as Record<string, unknown>).registries
      if (!Array.isArray(r) || r.some((x) => typeof x !== 'string')) throw bad(`[registries.${name}] registries must be a list of strings`)
      return r as string[]
    }
    const make = (prefix: string): RegistryEntry => ({ prefix: checkPrefix(prefix, bad), location: prefix, insecure: false, blocked: false, mirrors: [], file })
    const v1Entries = new Map<string, RegistryEntry>()
    for (const r of list('insecure')) (v1Entries.get(r) ?? v1Entries.set(r, make(r)).get(r)!).insecure = true
    for (const r of list('block')) (v1Entries.get(r) ?? v1Entries.set(r, make(r)).get(r)!).blocked = true
    return withHelpers([...v1Entries.values()])
  }
  const regs = doc.registry
  if (regs === undefined) return withHelpers(entries)
  if (!Array.isArray(regs)) throw bad('registry must be an array of tables ([[registry]])')
  for (const [i, raw] of regs.entries()) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`[[registry]] #${i + 1} must be a table`)
    const r = raw as Record<string, unknown>
    const location = str(r.location, `[[registry]] #${i + 1} location`)
    const prefix = checkPrefix(str(r.prefix, `[[registry]] #${i + 1} prefix`) || location, bad)
    if (!prefix) throw bad(`[[registry]] #${i + 1} has neither prefix nor location`)
    if (prefix.startsWith('*.') && location) throw bad(`[[registry]] ${prefix}: a wildcard prefix cannot have a location`)
    // As containers/image: only a wildcard prefix may go without a location.
    if (!prefix.startsWith('*.') && !location) throw bad(`[[registry]] ${prefix}: location is unset and the prefix is not a wildcard (*.example.com)`)
    const digestOnly = bool(r['mirror-by-digest-only'], `[[registry]] ${prefix} mirror-by-digest-only`)
    const mirrorsRaw = r.mirror ?? []
    if (!Array.isArray(mirrorsRaw)) throw bad(`[[registry]] ${prefix}: mirror must be an array of tables ([[registry.mirror]])`)
    const mirrors = mirrorsRaw.map((m: unknown, j): MirrorEntry => {
      if (typeof m !== 'object' || m === null) throw bad(`[[registry]] ${prefix}: mirror #${j + 1} must be a table`)
      const mm = m as Record<string, unknown>
      const loc = str(mm.location, `[[registry]] ${prefix} mirror #${j + 1} location`)
      if (!loc) throw bad(`[[registry]] ${prefix}: mirror #${j + 1} has no location`)
      const pull = str(mm['pull-from-mirror'], `[[registry]] ${prefix} mirror #${j + 1} pull-from-mirror`) || 'all'
      if (pull !== 'all' && pull !== 'digest-only' && pull !== 'tag-only')
        throw bad(`[[registry]] ${prefix}: mirror #${j + 1} pull-from-mirror must be all, digest-only or tag-only, got ${JSON.stringify(pull)}`)
      if (digestOnly && pull !== 'all') throw bad(`[[registry]] ${prefix}: mirror-by-digest-only cannot be combined with pull-from-mirror`)
      return {
        location: loc,
        insecure: bool(mm.insecure, `[[registry]] ${prefix} mirror #${j + 1} insecure`),
        pullFromMirror: digestOnly ? 'digest-only' : pull,
      }
    })
    entries.push({
      prefix,
      location,
      insecure: bool(r.insecure, `[[registry]] ${prefix} insecure`),
      blocked: bool(r.blocked, `[[registry]] ${prefix} blocked`),
      mirrors,
      file,
    })
  }
  return withHelpers(entries)
}

function checkPrefix(prefix: string, bad: (what: string) => LadingError): string {
  const p = prefix.replace(/\/+$/, '')
  if (p.includes('://')) throw bad(`${JSON.stringify(prefix)}: a prefix or location names a registry, not a URL`)
  if (p.startsWith('*.') && p.includes('/')) throw bad(`${JSON.stringify(prefix)}: a wildcard prefix names hosts only`)
  const slash = p.indexOf('/')
  if (p.includes('@') || (slash >= 0 && p.slice(slash).includes(':')))
    throw bad(`${JSON.stringify(prefix)}: prefixes naming a tag or digest are not supported by lading`)
  return p
}

/** Does `prefix` apply to the reference name `name` (`host/repository`)? */
function matches(prefix: string, name: string): boolean {
  if (prefix.startsWith('*.')) {
    const host = name.split('/')[0]!
    return host.endsWith(prefix.slice(1))
  }
  return name === prefix || name.startsWith(`${prefix}/`)
}

/** The entry for a reference: the longest prefix that applies (containers-registries.conf(5)). */
export function findRegistry(conf: RegistriesConf, ref: { registry: string; repository: string }): RegistryEntry | undefined {
  const name = `${ref.registry}/${ref.repository}`
  let best: RegistryEntry | undefined
  for (const r of conf.registries) {
    if (matches(r.prefix, name) && (!best || r.prefix.length > best.prefix.length)) best = r
  }
  return best
}

/** `ref` with the entry's prefix replaced by `location`. */
function relocate(ref: DockerReference, prefix: string, location: string): DockerReference {
  if (!location || prefix.startsWith('*.')) return ref
  const name = `${ref.registry}/${ref.repository}`
  const moved = location + name.slice(prefix.length)
  const slash = moved.indexOf('/')
  if (slash <= 0 || slash === moved.length - 1) {
    throw new LadingError(
      'INVALID_REFERENCE',
      `registries.conf: ${name} moved by ${JSON.stringify(prefix)} -> ${JSON.stringify(location)} is ${JSON.stringify(moved)}, which names no repository`,
    )
  }
  // The moved name is read by the one Docker grammar and must already be in its normalised form,
  // as containers/image requires (reference.ParseNamed): a location `mirror/x` is refused rather
  // than read as a Docker Hub namespace.
  let n: DockerName
  try {
    n = parseDockerName(moved)
  } catch (e) {
    throw new LadingError(
      'INVALID_REFERENCE',
      `registries.conf: ${name} moved by ${JSON.stringify(prefix)} -> ${JSON.stringify(location)} is ${JSON.stringify(moved)}: ${(e as Error).message}`,
      { cause: e },
    )
  }
  if (`${n.registry}/${n.repository}` !== moved) {
    throw new LadingError(
      'INVALID_REFERENCE',
      `registries.conf: ${name} moved by ${JSON.stringify(prefix)} -> ${JSON.stringify(location)} is ${JSON.stringify(moved)}, which is not a normalised name (it reads as ${n.registry}/${n.repository})`,
    )
  }
  return { ...ref, registry: n.registry, repository: n.repository }
}

function refuseBlocked(entry: RegistryEntry | undefined, ref: DockerReference): void {
  if (entry?.blocked)
    throw new LadingError('DENIED', `${ref.registry}/${ref.repository}: the registry is blocked by registries.conf (${entry.file}, prefix ${entry.prefix})`)
}

/**
 * Where to pull `ref` from, in order: its mirrors (those that serve this kind of reference: a
 * digest or a tag), then its own location.
 */
export function pullEndpoints(conf: RegistriesConf, ref: DockerReference): Endpoint[] {
  const entry = findRegistry(conf, ref)
  refuseBlocked(entry, ref)
  if (!entry) return [{ ref, insecure: false, mirror: false }]
  const byDigest = ref.digest !== undefined
  const mirrors = entry.mirrors
    .filter((m) => m.pullFromMirror === 'all' || (m.pullFromMirror === 'digest-only') === byDigest)
    .map((m): Endpoint => ({ ref: relocate(ref, entry.prefix, m.location), insecure: m.insecure, mirror: true }))
  return [...mirrors, { ref: relocate(ref, entry.prefix, entry.location), insecure: entry.insecure, mirror: false }]
}

/**
 * Where to push `ref`, or list its tags or delete it: the reference itself. containers-registries.conf(5): "Redirection and
 * mirrors are currently processed only when reading images, not when pushing"; `blocked` and
 * `insecure` apply.
 */
export function directEndpoint(conf: RegistriesConf, ref: DockerReference): Endpoint {
  const entry = findRegistry(conf, ref)
  refuseBlocked(entry, ref)
  return { ref, insecure: entry?.insecure ?? false, mirror: false }
}

/** The options for one endpoint: registries.conf's `insecure` unless TLS verification was set explicitly. */
export function endpointOptions<T extends TlsOption>(opts: T, e: Endpoint): T {
  return e.insecure && opts.tlsVerify === undefined ? { ...opts, tlsVerify: false } : opts
}

/** Options for talking to `ref`'s own registry (push, list-tags, delete): blocked refuses, insecure applies. */
export function directRegistryOptions<T extends TlsOption>(ref: DockerReference, opts: T): T {
  return endpointOptions(opts, directEndpoint(processRegistriesConf(), ref))
}
