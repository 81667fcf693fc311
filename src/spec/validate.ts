/**
 * Structural and semantic validation of image-spec documents, listing *every* problem.
 * The rules follow the JSON schemas in image-spec/schema/ and the prose of descriptor.md,
 * manifest.md, image-index.md, config.md, image-layout.md and annotations.md; each rule
 * cites its section. Docker image manifest v2 schema 2 and manifest lists share the OCI shape
 * and are checked by the same code with the Docker media types; schema 1 is refused.
 *
 * Contract: check* functions never throw on bad input (any `unknown` is accepted) and return
 * problems in document order. parse.ts turns the first problem into a LadingError.
 */
import { parseDigest, isAlgorithm, verifyBytes, type Digest } from '../digest/index.js'
import { isLadingError, type ErrorCode, quoteName } from '../errors.js'
import { pointerJoin } from './json-pointer.js'
import { Annotation, MEDIA_TYPE_RE, MediaType, isConfigMediaType, isIndexMediaType, isLayerMediaType, isManifestMediaType } from './media-types.js'
import { tagProblem } from './ref-name.js'
import type { ImageConfig, Manifest, Platform } from './types.js'

export interface Problem {
  source: string
  pointer: string
  code: ErrorCode
  message: string
}

/** Collects problems about one document; `code` is the default code for them. */
export class ProblemList {
  readonly problems: Problem[] = []
  readonly source: string
  readonly code: ErrorCode
  constructor(source: string, code: ErrorCode) {
    this.source = source
    this.code = code
  }
  add(pointer: string, message: string, code: ErrorCode = this.code): void {
    this.problems.push({ source: this.source, pointer, code, message })
  }
  get size(): number {
    return this.problems.length
  }
}

/** One line per problem: `<source>: <pointer>: <message>` (the whole document is `/`). */
export function formatProblem(p: Problem): string {
  return `${p.source}: ${p.pointer === '' ? '/' : p.pointer}: ${p.message}`
}

// ---------------------------------------------------------------------------------------------
// Primitive checks

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function typeName(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

function has(o: Record<string, unknown>, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k)
}

function expectString(pl: ProblemList, o: Record<string, unknown>, key: string, ptr: string, required = false): string | undefined {
  if (!has(o, key)) {
    if (required) pl.add(pointerJoin(ptr, key), 'required field is missing')
    return undefined
  }
  const v = o[key]
  if (typeof v !== 'string') {
    pl.add(pointerJoin(ptr, key), `must be a string, got ${typeName(v)}`)
    return undefined
  }
  return v
}

function expectStringArray(pl: ProblemList, v: unknown, ptr: string, allowNull = false): void {
  if (v === null && allowNull) return
  if (!Array.isArray(v)) {
    pl.add(ptr, `must be an array of strings${allowNull ? ' or null' : ''}, got ${typeName(v)}`)
    return
  }
  v.forEach((s, i) => {
    if (typeof s !== 'string') pl.add(pointerJoin(ptr, i), `must be a string, got ${typeName(s)}`)
  })
}

/** defs.json mapStringString; annotations.md §Rules: values MUST be strings. */
function checkStringMap(pl: ProblemList, v: unknown, ptr: string, allowNull = false): v is Record<string, string> {
  if (v === null && allowNull) return false
  if (!isObject(v)) {
    pl.add(ptr, `must be an object of strings, got ${typeName(v)}`)
    return false
  }
  let ok = true
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') {
      pl.add(pointerJoin(ptr, k), `value must be a string, got ${typeName(val)}`)
      ok = false
    }
  }
  return ok
}

/** defs.json mapStringObject (ExposedPorts, Volumes). */
function checkObjectMap(pl: ProblemList, v: unknown, ptr: string, allowNull: boolean): Record<string, unknown> | undefined {
  if (v === null && allowNull) return undefined
  if (!isObject(v)) {
    pl.add(ptr, `must be an object${allowNull ? ' or null' : ''}, got ${typeName(v)}`)
    return undefined
  }
  for (const [k, val] of Object.entries(v)) {
    if (!isObject(val)) pl.add(pointerJoin(ptr, k), `value must be an object, got ${typeName(val)}`)
  }
  return v
}

/** descriptor.md §Properties / defs-descriptor.json mediaType: RFC 6838 §4.2 names. */
export function mediaTypeProblem(v: unknown): string | undefined {
  if (typeof v !== 'string') return `media type must be a string, got ${typeName(v)}`
  if (!MEDIA_TYPE_RE.test(v)) return `invalid media type ${quoteName(v)}: not type/subtype per RFC 6838`
  return undefined
}

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

/** config.md `created`: RFC 3339 §5.6 date-time. Returns why not, or undefined. */
export function rfc3339Problem(v: unknown): string | undefined {
  if (typeof v !== 'string') return `must be an RFC 3339 date-time string, got ${typeName(v)}`
  const m = RFC3339_RE.exec(v)
  const bad = `invalid date-time ${quoteName(v)}: expected RFC 3339, e.g. 2024-01-02T15:04:05Z`
  if (!m) return bad
  const [, , mo, d, h, mi, s] = m.map(Number) as number[]
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > 31 || h! > 23 || mi! > 59 || s! > 60) return bad
  if (Number.isNaN(Date.parse(v.replace(/:60(\.\d+)?([Zz+-])/, ':59$2')))) return bad
  return undefined
}

/** A digest problem in the words of parseDigest, or undefined. */
function digestProblem(v: unknown): string | undefined {
  try {
    parseDigest(v)
    return undefined
  } catch (e) {
    return isLadingError(e) ? e.message : String(e)
  }
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

// ---------------------------------------------------------------------------------------------
// Descriptor and platform

export interface DescriptorRules {
  /** Check ref.name annotations against the tag grammar (descriptors in index.json). */
  refName?: boolean
}

/**
 * descriptor.md §Properties and content-descriptor.json: mediaType, digest and size are
 * required; urls are URIs; annotations map strings to strings; data is base64 of exactly
 * the described bytes (descriptor.md §Embedded Content).
 */
export function checkDescriptorInto(pl: ProblemList, v: unknown, ptr: string, rules: DescriptorRules = {}): void {
  if (!isObject(v)) {
    pl.add(ptr, `descriptor must be an object, got ${typeName(v)}`)
    return
  }
  if (!has(v, 'mediaType')) pl.add(pointerJoin(ptr, 'mediaType'), 'required field is missing')
  else {
    const why = mediaTypeProblem(v.mediaType)
    if (why) pl.add(pointerJoin(ptr, 'mediaType'), why)
  }
  let digestOk = false
  if (!has(v, 'digest')) pl.add(pointerJoin(ptr, 'digest'), 'required field is missing')
  else {
    const why = digestProblem(v.digest)
    if (why) pl.add(pointerJoin(ptr, 'digest'), why, 'DIGEST_INVALID')
    else digestOk = true
  }
  let sizeOk = false
  if (!has(v, 'size')) pl.add(pointerJoin(ptr, 'size'), 'required field is missing')
  else if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) {
    // descriptor.md: size is int64; negative sizes and values JavaScript cannot hold exactly are refused.
    pl.add(pointerJoin(ptr, 'size'), `size must be a non-negative integer, got ${quoteName(v.size)}`)
  } else sizeOk = true
  if (has(v, 'urls')) {
    if (!Array.isArray(v.urls)) pl.add(pointerJoin(ptr, 'urls'), `must be an array of URLs, got ${typeName(v.urls)}`)
    else {
      v.urls.forEach((u, i) => {
        if (typeof u !== 'string') pl.add(pointerJoin(ptr, 'urls', i), `must be a string, got ${typeName(u)}`)
        else if (!URL.canParse(u)) pl.add(pointerJoin(ptr, 'urls', i), `invalid URL ${quoteName(u)} (RFC 3986)`)
      })
    }
  }
  if (has(v, 'annotations')) checkAnnotationsInto(pl, v.annotations, pointerJoin(ptr, 'annotations'), rules.refName === true)
  if (has(v, 'artifactType')) {
    const why = mediaTypeProblem(v.artifactType)
    if (why) pl.add(pointerJoin(ptr, 'artifactType'), why)
  }
  if (has(v, 'data')) {
    const dp = pointerJoin(ptr, 'data')
    if (typeof v.data !== 'string') pl.add(dp, `must be a base64 string, got ${typeName(v.data)}`)
    else if (!BASE64_RE.test(v.data)) pl.add(dp, 'is not valid base64 (RFC 4648 §4)')
    else if (Buffer.from(v.data, 'base64').toString('base64') !== v.data) {
      // Non-zero padding bits: two spellings of the same bytes; RFC 4648 §3.5 lets us refuse.
      pl.add(dp, 'is not canonical base64 (non-zero padding bits, RFC 4648 §3.5)')
    } else if (digestOk && sizeOk) {
      // descriptor.md §Embedded Content: the data MUST match the digest and size.
      try {
        verifyBytes(Buffer.from(v.data, 'base64'), { digest: v.digest as Digest, size: v.size as number, name: 'embedded data' })
      } catch (e) {
        pl.add(dp, isLadingError(e) ? e.message : String(e), isLadingError(e) ? e.code : pl.code)
      }
    }
  }
  // image-index.md: platform belongs to manifests[] entries; elsewhere it is an unknown
  // property (ignored by the spec) but, being ours to read, it must still be well-formed.
  if (has(v, 'platform')) checkPlatformInto(pl, v.platform, pointerJoin(ptr, 'platform'))
}

/** annotations.md §Rules; with `refName`, also the ref.name grammar (image-layout.md §index.json). */
export function checkAnnotationsInto(pl: ProblemList, v: unknown, ptr: string, refName = false): void {
  if (!checkStringMap(pl, v, ptr)) return
  for (const [k, val] of Object.entries(v)) {
    if (k === '') pl.add(ptr, 'annotation keys must not be empty')
    if (refName && k === Annotation.RefName) {
      const why = tagProblem(val)
      if (why) pl.add(pointerJoin(ptr, k), why, 'TAG_INVALID')
    }
    if (k === Annotation.Created) {
      const why = rfc3339Problem(val)
      if (why) pl.add(pointerJoin(ptr, k), why)
    }
  }
}

/** image-index.md §platform: architecture and os required; the rest typed. */
export function checkPlatformInto(pl: ProblemList, v: unknown, ptr: string): void {
  if (!isObject(v)) {
    pl.add(ptr, `platform must be an object, got ${typeName(v)}`)
    return
  }
  const arch = expectString(pl, v, 'architecture', ptr, true)
  const os = expectString(pl, v, 'os', ptr, true)
  if (arch === '') pl.add(pointerJoin(ptr, 'architecture'), 'must not be empty')
  if (os === '') pl.add(pointerJoin(ptr, 'os'), 'must not be empty')
  expectString(pl, v, 'os.version', ptr)
  expectString(pl, v, 'variant', ptr)
  if (has(v, 'os.features')) expectStringArray(pl, v['os.features'], pointerJoin(ptr, 'os.features'))
  if (has(v, 'features')) expectStringArray(pl, v.features, pointerJoin(ptr, 'features'))
}

export function checkDescriptor(value: unknown, source: string, pointer = ''): Problem[] {
  const pl = new ProblemList(source, 'INVALID_DOCUMENT')
  checkDescriptorInto(pl, value, pointer)
  return pl.problems
}

export function checkPlatform(value: unknown, source: string, pointer = ''): Problem[] {
  const pl = new ProblemList(source, 'INVALID_DOCUMENT')
  checkPlatformInto(pl, value, pointer)
  return pl.problems
}

// ---------------------------------------------------------------------------------------------
// Manifest and index

const SCHEMA1 = new Set<string>([MediaType.DockerManifestV1, MediaType.DockerManifestV1Signed])

/** Docker schema 1 is refused clearly (it is deprecated and unsigned content is unverifiable). */
function checkSchema1(pl: ProblemList, v: Record<string, unknown>): boolean {
  if (v.schemaVersion === 1 || (typeof v.mediaType === 'string' && SCHEMA1.has(v.mediaType))) {
    pl.add('/schemaVersion', 'Docker image manifest schema 1 is not supported (deprecated by Docker; fetch the schema 2 or OCI form instead)', 'UNSUPPORTED')
    return true
  }
  return false
}

/** manifest.md §subject: a descriptor of another *manifest* (or index), never of a layer or config. */
function checkSubject(pl: ProblemList, v: unknown): void {
  checkDescriptorInto(pl, v, '/subject')
  if (isObject(v) && typeof v.mediaType === 'string' && (isLayerMediaType(v.mediaType) || isConfigMediaType(v.mediaType))) {
    pl.add('/subject/mediaType', `${v.mediaType} is not a manifest media type; a subject names another manifest`)
  }
}

/** Both documents: `schemaVersion` MUST be 2 (manifest.md, image-index.md §Properties). */
function checkSchemaVersion(pl: ProblemList, v: Record<string, unknown>): void {
  if (!has(v, 'schemaVersion')) pl.add('/schemaVersion', 'required field is missing')
  else if (v.schemaVersion !== 2) pl.add('/schemaVersion', `must be 2, got ${quoteName(v.schemaVersion)}`)
}

/**
 * `mediaType` must agree with where the document was found (the descriptor or Content-Type
 * that led here). OCI makes the field optional (SHOULD); Docker v2s2 requires it.
 */
function checkDocMediaType(pl: ProblemList, v: Record<string, unknown>, kind: 'manifest' | 'index', expected: string | undefined): void {
  const isKind = kind === 'manifest' ? isManifestMediaType : isIndexMediaType
  const other = kind === 'manifest' ? isIndexMediaType : isManifestMediaType
  const oci = kind === 'manifest' ? MediaType.OciManifest : MediaType.OciIndex
  if (has(v, 'mediaType')) {
    const why = mediaTypeProblem(v.mediaType)
    if (why) {
      pl.add('/mediaType', why)
      return
    }
    const mt = v.mediaType as string
    if (!isKind(mt)) {
      pl.add('/mediaType', other(mt) ? `is ${mt}, which is not an image ${kind}` : `unsupported ${kind} media type ${mt}`, other(mt) ? pl.code : 'UNSUPPORTED')
    } else if (expected !== undefined && mt !== expected) {
      pl.add('/mediaType', `is ${mt} but the document was referenced as ${expected}`)
    }
  } else if (expected !== undefined && expected !== oci) {
    if (isKind(expected))
      pl.add('/mediaType', `required field is missing (a Docker ${kind === 'manifest' ? 'manifest' : 'manifest list'} must state ${expected})`)
    else pl.add('', `the document was referenced as ${expected}, which is not an image ${kind}`)
  }
}

const LAYER_FAMILIES = ['application/vnd.oci.image.layer.', 'application/vnd.docker.image.rootfs.']

/** A known layer media type, or a (future or extended) member of the OCI or Docker layer families. */
function isLayerLike(m: string): boolean {
  return isLayerMediaType(m) || LAYER_FAMILIES.some((p) => m.startsWith(p))
}

/** image-manifest-schema.json + manifest.md §Image Manifest Property Descriptions and §Guidelines for Artifact Usage. */
export function checkManifestInto(pl: ProblemList, value: unknown, expectedMediaType?: string): void {
  if (!isObject(value)) {
    pl.add('', `a manifest must be a JSON object, got ${typeName(value)}`)
    return
  }
  if (checkSchema1(pl, value)) return
  checkSchemaVersion(pl, value)
  checkDocMediaType(pl, value, 'manifest', expectedMediaType)
  // GHSA-77vh-xpmg-72qh (CVE-2021-41190): a document that reads as both a manifest and an index
  // lets two tools see two different images under one digest; such documents are refused.
  if (has(value, 'manifests')) pl.add('/manifests', 'an image manifest has no "manifests" field (is this an index?)')
  const docker = value.mediaType === MediaType.DockerManifest
  if (has(value, 'artifactType')) {
    const why = mediaTypeProblem(value.artifactType)
    if (why) pl.add('/artifactType', why)
  }
  let configType: string | undefined
  if (!has(value, 'config')) pl.add('/config', 'required field is missing')
  else {
    checkDescriptorInto(pl, value.config, '/config')
    if (isObject(value.config) && typeof value.config.mediaType === 'string') configType = value.config.mediaType
  }
  // manifest.md §artifactType: MUST be set when config.mediaType is the empty value.
  if (configType === MediaType.OciEmpty && !has(value, 'artifactType')) {
    pl.add('/artifactType', `required when config.mediaType is ${MediaType.OciEmpty} (manifest.md §Guidelines for Artifact Usage)`)
  }
  // manifest.md §config: the config is a configuration object, never a layer or another manifest.
  if (configType !== undefined && (isLayerMediaType(configType) || isManifestMediaType(configType) || isIndexMediaType(configType))) {
    pl.add('/config/mediaType', `${configType} is not a config media type (it names a ${isLayerMediaType(configType) ? 'layer' : 'manifest or index'})`)
  }
  if (docker && configType !== undefined && configType === MediaType.OciConfig) {
    pl.add('/config/mediaType', `a Docker v2 schema 2 manifest's config must be ${MediaType.DockerConfig}, not the OCI config type`)
  }
  const image = isConfigMediaType(configType)
  if (!has(value, 'layers')) pl.add('/layers', 'required field is missing')
  else if (!Array.isArray(value.layers)) pl.add('/layers', `must be an array of descriptors, got ${typeName(value.layers)}`)
  else {
    // manifest.md §layers: "SHOULD have at least one entry". An image with no layers at all is
    // what `umoci new` writes (its config has no diff_ids), so it is accepted here;
    // checkImage insists that diff_ids and layers agree.
    value.layers.forEach((l, i) => {
      const p = pointerJoin('/layers', i)
      checkDescriptorInto(pl, l, p)
      // For images (an image config), every layer must be a filesystem layer type (layer.md).
      // manifest.md allows other RFC 6838 types beyond the ones implementations MUST support, so
      // unknown members of the layer families (e.g. ocicrypt's "+encrypted") are accepted.
      if (image && isObject(l) && typeof l.mediaType === 'string' && MEDIA_TYPE_RE.test(l.mediaType) && !isLayerLike(l.mediaType)) {
        pl.add(pointerJoin(p, 'mediaType'), `${l.mediaType} is not a layer media type, but config is ${configType}`)
      }
    })
  }
  if (has(value, 'subject')) checkSubject(pl, value.subject)
  if (has(value, 'annotations')) checkAnnotationsInto(pl, value.annotations, '/annotations')
}

/** image-index-schema.json + image-index.md §Image Index Property Descriptions. */
export function checkIndexInto(pl: ProblemList, value: unknown, expectedMediaType?: string): void {
  if (!isObject(value)) {
    pl.add('', `an index must be a JSON object, got ${typeName(value)}`)
    return
  }
  if (checkSchema1(pl, value)) return
  checkSchemaVersion(pl, value)
  checkDocMediaType(pl, value, 'index', expectedMediaType)
  // GHSA-77vh-xpmg-72qh: see checkManifestInto.
  if (has(value, 'config') || has(value, 'layers'))
    pl.add(has(value, 'config') ? '/config' : '/layers', 'an image index has no "config" or "layers" field (is this a manifest?)')
  const docker = value.mediaType === MediaType.DockerManifestList
  if (has(value, 'artifactType')) {
    const why = mediaTypeProblem(value.artifactType)
    if (why) pl.add('/artifactType', why)
  }
  if (!has(value, 'manifests')) pl.add('/manifests', 'required field is missing')
  else if (!Array.isArray(value.manifests)) pl.add('/manifests', `must be an array of descriptors, got ${typeName(value.manifests)}`)
  else {
    value.manifests.forEach((d, i) => {
      const p = pointerJoin('/manifests', i)
      // ref.name is a tag only in index.json (annotations.md), but the grammar is checked in
      // every index: a nested index carrying one is rare and then the same rules apply.
      checkDescriptorInto(pl, d, p, { refName: true })
      if (docker && isObject(d) && !has(d, 'platform')) {
        pl.add(pointerJoin(p, 'platform'), 'required in a Docker manifest list')
      }
    })
  }
  if (has(value, 'subject')) checkSubject(pl, value.subject)
  if (has(value, 'annotations')) checkAnnotationsInto(pl, value.annotations, '/annotations')
}

export function checkManifest(value: unknown, source: string, expectedMediaType?: string): Problem[] {
  const pl = new ProblemList(source, 'INVALID_MANIFEST')
  checkManifestInto(pl, value, expectedMediaType)
  return pl.problems
}

export function checkIndex(value: unknown, source: string, expectedMediaType?: string): Problem[] {
  const pl = new ProblemList(source, 'INVALID_INDEX')
  checkIndexInto(pl, value, expectedMediaType)
  return pl.problems
}

// ---------------------------------------------------------------------------------------------
// Config

const PORT_RE = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/

/** config.md §Properties, config-schema.json. Docker-only fields are allowed and left alone. */
export function checkConfigInto(pl: ProblemList, value: unknown): void {
  if (!isObject(value)) {
    pl.add('', `an image config must be a JSON object, got ${typeName(value)}`)
    return
  }
  const arch = expectString(pl, value, 'architecture', '', true)
  const os = expectString(pl, value, 'os', '', true)
  if (arch === '') pl.add('/architecture', 'must not be empty')
  if (os === '') pl.add('/os', 'must not be empty')
  expectString(pl, value, 'author', '')
  expectString(pl, value, 'variant', '')
  expectString(pl, value, 'os.version', '')
  if (has(value, 'os.features')) expectStringArray(pl, value['os.features'], '/os.features')
  if (has(value, 'created')) {
    const why = rfc3339Problem(value.created)
    if (why) pl.add('/created', why)
  }
  if (has(value, 'config') && value.config !== null) checkContainerConfig(pl, value.config, '/config')
  if (!has(value, 'rootfs')) pl.add('/rootfs', 'required field is missing')
  else if (!isObject(value.rootfs)) pl.add('/rootfs', `must be an object, got ${typeName(value.rootfs)}`)
  else {
    const r = value.rootfs
    if (!has(r, 'type')) pl.add('/rootfs/type', 'required field is missing')
    else if (r.type !== 'layers') pl.add('/rootfs/type', `must be "layers", got ${quoteName(r.type)}`)
    if (!has(r, 'diff_ids')) pl.add('/rootfs/diff_ids', 'required field is missing')
    else if (!Array.isArray(r.diff_ids)) pl.add('/rootfs/diff_ids', `must be an array of digests, got ${typeName(r.diff_ids)}`)
    else {
      r.diff_ids.forEach((d, i) => {
        const why = digestProblem(d)
        if (why) pl.add(pointerJoin('/rootfs/diff_ids', i), why, 'DIGEST_INVALID')
      })
    }
  }
  if (has(value, 'history')) {
    if (!Array.isArray(value.history)) pl.add('/history', `must be an array, got ${typeName(value.history)}`)
    else {
      value.history.forEach((h, i) => {
        const p = pointerJoin('/history', i)
        if (!isObject(h)) {
          pl.add(p, `must be an object, got ${typeName(h)}`)
          return
        }
        if (has(h, 'created')) {
          const why = rfc3339Problem(h.created)
          if (why) pl.add(pointerJoin(p, 'created'), why)
        }
        expectString(pl, h, 'author', p)
        expectString(pl, h, 'created_by', p)
        expectString(pl, h, 'comment', p)
        if (has(h, 'empty_layer') && typeof h.empty_layer !== 'boolean') {
          pl.add(pointerJoin(p, 'empty_layer'), `must be a boolean, got ${typeName(h.empty_layer)}`)
        }
      })
    }
  }
}

/**
 * config.md §Properties `config`. Go's encoding/json (which wrote most configs in the wild)
 * emits null for empty slices and maps, so null is accepted wherever Go would produce it.
 */
function checkContainerConfig(pl: ProblemList, c: unknown, ptr: string): void {
  if (!isObject(c)) {
    pl.add(ptr, `must be an object, got ${typeName(c)}`)
    return
  }
  expectString(pl, c, 'User', ptr)
  expectString(pl, c, 'WorkingDir', ptr)
  expectString(pl, c, 'StopSignal', ptr)
  if (has(c, 'ArgsEscaped') && typeof c.ArgsEscaped !== 'boolean') pl.add(pointerJoin(ptr, 'ArgsEscaped'), `must be a boolean, got ${typeName(c.ArgsEscaped)}`)
  if (has(c, 'ExposedPorts')) {
    const ports = checkObjectMap(pl, c.ExposedPorts, pointerJoin(ptr, 'ExposedPorts'), true)
    // config.md ExposedPorts: keys are "port/tcp", "port/udp" or "port" (tcp by default).
    for (const k of Object.keys(ports ?? {})) {
      const m = PORT_RE.exec(k)
      if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) {
        pl.add(pointerJoin(ptr, 'ExposedPorts', k), `invalid port ${quoteName(k)}: expected port[/tcp|/udp|/sctp] with port 1-65535`)
      }
    }
  }
  if (has(c, 'Env')) {
    expectStringArray(pl, c.Env, pointerJoin(ptr, 'Env'), true)
    // config.md Env: "Entries are in the format of VARNAME=VARVALUE".
    if (Array.isArray(c.Env)) {
      c.Env.forEach((e, i) => {
        if (typeof e === 'string' && e.indexOf('=') <= 0)
          pl.add(pointerJoin(ptr, 'Env', i), `invalid environment entry ${quoteName(e)}: expected VARNAME=VARVALUE`)
      })
    }
  }
  if (has(c, 'Entrypoint')) expectStringArray(pl, c.Entrypoint, pointerJoin(ptr, 'Entrypoint'), true)
  if (has(c, 'Cmd')) expectStringArray(pl, c.Cmd, pointerJoin(ptr, 'Cmd'), true)
  if (has(c, 'Volumes')) checkObjectMap(pl, c.Volumes, pointerJoin(ptr, 'Volumes'), true)
  if (has(c, 'Labels')) checkStringMap(pl, c.Labels, pointerJoin(ptr, 'Labels'), true)
}

export function checkConfig(value: unknown, source: string): Problem[] {
  const pl = new ProblemList(source, 'INVALID_CONFIG')
  checkConfigInto(pl, value)
  return pl.problems
}

/** image-layout.md §oci-layout file; image-layout-schema.json. Only version 1.0.0 exists. */
export function checkLayoutFile(value: unknown, source: string): Problem[] {
  const pl = new ProblemList(source, 'INVALID_LAYOUT')
  if (!isObject(value)) pl.add('', `oci-layout must be a JSON object, got ${typeName(value)}`)
  else if (!has(value, 'imageLayoutVersion')) pl.add('/imageLayoutVersion', 'required field is missing')
  else if (value.imageLayoutVersion !== '1.0.0') {
    pl.add(
      '/imageLayoutVersion',
      `unsupported image layout version ${quoteName(value.imageLayoutVersion)} (only "1.0.0" is defined by image-layout.md)`,
      typeof value.imageLayoutVersion === 'string' ? 'UNSUPPORTED' : 'INVALID_LAYOUT',
    )
  }
  return pl.problems
}

// ---------------------------------------------------------------------------------------------
// Semantics of a whole image

/**
 * An image manifest with its (already structurally valid) config:
 * - config.md rootfs.diff_ids: one diff_id per layer, in order;
 * - config.md history: entries without empty_layer correspond one-to-one with the layers;
 * - config.md: architecture and os are REQUIRED and non-empty;
 * - layer.md: an uncompressed layer's diff_id is its own digest, so that is checked too.
 */
export function checkImage(manifest: Manifest, config: ImageConfig, source: string): Problem[] {
  const pl = new ProblemList(source, 'INVALID_CONFIG')
  const layers = manifest.layers
  const diffIds = config.rootfs?.diff_ids ?? []
  if (diffIds.length !== layers.length) {
    pl.add('/rootfs/diff_ids', `has ${diffIds.length} diff_ids but the manifest has ${layers.length} layers`)
  } else {
    layers.forEach((l, i) => {
      if (
        (l.mediaType === MediaType.OciLayer || l.mediaType === MediaType.DockerLayer || l.mediaType === MediaType.OciLayerNondist) &&
        diffIds[i] !== l.digest
      ) {
        const alg = String(diffIds[i]).split(':')[0] ?? ''
        if (isAlgorithm(alg) && alg === l.digest.split(':')[0]) {
          pl.add(pointerJoin('/rootfs/diff_ids', i), `is ${diffIds[i]} but layer ${i} is uncompressed with digest ${l.digest}; they must be equal`)
        }
      }
    })
  }
  if (Array.isArray(config.history)) {
    const nonEmpty = config.history.filter((h) => !h.empty_layer).length
    if (nonEmpty !== layers.length) {
      pl.add('/history', `has ${nonEmpty} entries that are not empty_layer but the manifest has ${layers.length} layers`)
    }
  }
  if (!config.os) pl.add('/os', 'required: the image has no os')
  if (!config.architecture) pl.add('/architecture', 'required: the image has no architecture')
  return pl.problems
}

/** Does a config's platform agree with the platform an index claims for it? */
export function checkPlatformAgrees(claimed: Platform, config: ImageConfig, source: string, pointer = ''): Problem[] {
  const pl = new ProblemList(source, 'INVALID_INDEX')
  if (claimed.os !== config.os) pl.add(pointerJoin(pointer, 'platform', 'os'), `is ${quoteName(claimed.os)} but the image config says ${quoteName(config.os)}`)
  if (claimed.architecture !== config.architecture)
    pl.add(
      pointerJoin(pointer, 'platform', 'architecture'),
      `is ${quoteName(claimed.architecture)} but the image config says ${quoteName(config.architecture)}`,
    )
  if (claimed.variant && config.variant && claimed.variant !== config.variant)
    pl.add(pointerJoin(pointer, 'platform', 'variant'), `is ${quoteName(claimed.variant)} but the image config says ${quoteName(config.variant)}`)
  return pl.problems
}
