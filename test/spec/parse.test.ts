import { test } from 'node:test'
import assert from 'node:assert/strict'
import { digestOf } from '../../src/digest/digest.js'
import { isLadingError } from '../../src/errors.js'
import { MediaType } from '../../src/spec/media-types.js'
import { manifestMediaType, parseConfig, parseDescriptor, parseIndex, parseJson, parseLayoutFile, parseManifest } from '../../src/spec/parse.js'
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from '../../src/spec/platform.js'
import { assertValidTag, isValidTag } from '../../src/spec/ref-name.js'
import { checkImage, checkManifest, rfc3339Problem } from '../../src/spec/validate.js'
import { configMediaTypeFor, convertIndex, convertManifest } from '../../src/spec/convert.js'
import type { ImageConfig, Index, Manifest } from '../../src/spec/types.js'

const D = (s: string) => digestOf(s)
const layer = (s: string, mediaType: string = MediaType.OciLayerGzip) => ({ mediaType, digest: D(s), size: s.length })
const manifest = (over: Record<string, unknown> = {}): Manifest =>
  ({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: D('c'), size: 1 },
    layers: [layer('a'), layer('b')],
    ...over,
  }) as Manifest
const bytes = (v: unknown) => Buffer.from(JSON.stringify(v))

function throwsCode(fn: () => unknown, code: string, msg?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isLadingError(e), String(e))
    assert.equal(e.code, code, e.message)
    if (msg) assert.match(e.message, msg)
    assert.doesNotMatch(e.message, /\n/, 'one line')
    return true
  })
}

test('parseJson: size cap before parsing, UTF-8, syntax', () => {
  throwsCode(() => parseJson(Buffer.alloc(11, 0x20), 'doc', 10), 'SIZE_LIMIT', /^doc: \/: document is 11 bytes, larger than the limit of 10 bytes$/)
  throwsCode(() => parseJson(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20), 'doc'), 'SIZE_LIMIT', /4194304/)
  throwsCode(() => parseJson(Buffer.from([0x22, 0xc3, 0x28, 0x22]), 'doc'), 'INVALID_JSON', /not valid UTF-8/)
  throwsCode(() => parseJson(Buffer.from('{'), 'doc'), 'INVALID_JSON', /^doc: \/: not valid JSON/)
  assert.deepEqual(parseJson(Buffer.from('{"a":1}'), 'doc'), { a: 1 })
})

test('security: deeply nested JSON within the size cap is refused or parsed, never a crash', () => {
  const deep = Buffer.from('['.repeat(1_000_000) + ']'.repeat(1_000_000))
  assert.ok(deep.length < 4 * 1024 * 1024)
  try {
    const v = parseManifest(deep, 'deep')
    assert.fail(`parsed ${typeof v}`)
  } catch (e) {
    assert.ok(isLadingError(e), String(e))
    assert.ok(['INVALID_JSON', 'INVALID_MANIFEST'].includes(e.code), e.code)
    assert.match(e.message, /^deep: \/: /)
  }
  // __proto__ keys are plain data: they neither pollute prototypes nor pass as annotations.
  const m = parseManifest(Buffer.from(JSON.stringify(manifest()).replace('{', '{"__proto__":{"polluted":1},')), 'p')
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
  assert.ok(m)
})

test('parseManifest: OCI and Docker v2s2 accepted; message names source, pointer, and counts the rest', () => {
  assert.equal(parseManifest(bytes(manifest()), 'm', MediaType.OciManifest).layers.length, 2)
  const docker = manifest({
    mediaType: MediaType.DockerManifest,
    config: { mediaType: MediaType.DockerConfig, digest: D('c'), size: 1 },
    layers: [layer('a', MediaType.DockerLayerGzip)],
  })
  assert.equal(parseManifest(bytes(docker), 'm', MediaType.DockerManifest).mediaType, MediaType.DockerManifest)
  // OCI allows mediaType to be absent; Docker requires it.
  const { mediaType: _, ...bare } = manifest()
  assert.ok(parseManifest(bytes(bare), 'm', MediaType.OciManifest))
  throwsCode(() => parseManifest(bytes(bare), 'm', MediaType.DockerManifest), 'INVALID_MANIFEST', /\/mediaType: required field is missing/)
  const bad = manifest({ layers: [{ mediaType: MediaType.OciLayer, digest: 'sha256:XYZ', size: -1 }] })
  throwsCode(
    () => parseManifest(bytes(bad), 'blob sha256:ab (manifest)', MediaType.OciManifest),
    'INVALID_MANIFEST',
    /^blob sha256:ab \(manifest\): \/layers\/0\/digest: invalid digest "sha256:XYZ": .* \(\+1 more problem\)$/,
  )
  throwsCode(() => parseManifest(bytes({ schemaVersion: 1, fsLayers: [] }), 'm'), 'UNSUPPORTED', /schema 1/)
  throwsCode(() => parseManifest(bytes([]), 'm'), 'INVALID_MANIFEST', /^m: \/: a manifest must be a JSON object/)
})

test('checkManifest: artifacts (empty config needs artifactType), layers of images are layer types, subject', () => {
  const empty = { mediaType: MediaType.OciEmpty, digest: D('{}'), size: 2, data: 'e30=' }
  const art = manifest({ config: empty, layers: [empty] })
  const ps = checkManifest(art, 'a', MediaType.OciManifest)
  assert.deepEqual(
    ps.map((p) => p.pointer),
    ['/artifactType'],
  )
  assert.deepEqual(checkManifest({ ...art, artifactType: 'application/vnd.example+type' }, 'a'), [])
  const wrongLayer = manifest({ layers: [layer('x', 'text/plain')] })
  assert.deepEqual(
    checkManifest(wrongLayer, 'm').map((p) => p.pointer),
    ['/layers/0/mediaType'],
  )
  assert.deepEqual(checkManifest(manifest({ layers: [layer('e', 'application/vnd.oci.image.layer.v1.tar+gzip+encrypted')] }), 'm'), [], 'ocicrypt layers')
  assert.deepEqual(
    checkManifest(manifest({ layers: [layer('m', MediaType.OciManifest)] }), 'm').map((p) => p.pointer),
    ['/layers/0/mediaType'],
  )
  // Artifacts may carry any layer media type.
  assert.deepEqual(checkManifest({ ...wrongLayer, config: { ...empty }, artifactType: 'application/x-a' }, 'm'), [])
  const withSubject = manifest({ subject: { mediaType: MediaType.OciManifest, digest: 'sha256:12', size: 1 } })
  assert.deepEqual(
    checkManifest(withSubject, 'm').map((p) => [p.pointer, p.code]),
    [['/subject/digest', 'DIGEST_INVALID']],
  )
  const layerSubject = manifest({ subject: layer('s') })
  assert.deepEqual(
    checkManifest(layerSubject, 'm').map((p) => p.pointer),
    ['/subject/mediaType'],
  )
  // Embedded data must match the digest.
  const badData = manifest({ config: { ...empty, data: 'e3w=' }, artifactType: 'application/x-a' })
  assert.deepEqual(
    checkManifest(badData, 'm').map((p) => [p.pointer, p.code]),
    [['/config/data', 'DIGEST_MISMATCH']],
  )
  const nonCanonical = manifest({ config: { ...empty, data: 'e31=' }, artifactType: 'application/x-a' })
  assert.deepEqual(
    checkManifest(nonCanonical, 'm').map((p) => p.message),
    ['is not canonical base64 (non-zero padding bits, RFC 4648 §3.5)'],
  )
  assert.deepEqual(checkManifest(manifest({ layers: [] }), 'm'), [], 'umoci new writes images without layers')
  const layerAsConfig = manifest({ config: layer('c', MediaType.OciLayerGzip) })
  assert.deepEqual(
    checkManifest(layerAsConfig, 'm').map((p) => p.pointer),
    ['/config/mediaType'],
  )
})

test('parseIndex: Docker manifest lists need platforms; index media type checks', () => {
  const entry = { mediaType: MediaType.OciManifest, digest: D('m'), size: 1, platform: { os: 'linux', architecture: 'amd64' } }
  const idx = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [entry] }
  assert.equal(parseIndex(bytes(idx), 'i', MediaType.OciIndex).manifests.length, 1)
  const list = { schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [{ mediaType: MediaType.DockerManifest, digest: D('m'), size: 1 }] }
  throwsCode(() => parseIndex(bytes(list), 'i'), 'INVALID_INDEX', /\/manifests\/0\/platform: required in a Docker manifest list/)
  throwsCode(() => parseIndex(bytes(idx), 'i', MediaType.OciManifest), 'INVALID_INDEX', /referenced as application\/vnd\.oci\.image\.manifest/)
  throwsCode(() => parseIndex(bytes({ ...idx, mediaType: 'application/x-foo' }), 'i'), 'UNSUPPORTED', /unsupported index media type/)
})

test('parseConfig: types, RFC 3339, ports, Go-style nulls accepted', () => {
  const cfg = {
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [D('a')] },
    config: { Env: null, Cmd: null, Entrypoint: null, Volumes: null, Labels: null, ExposedPorts: { '53/udp': {}, '80': {} } },
    history: [{ created: '2024-01-02T03:04:05.123+01:00' }],
  }
  assert.equal(parseConfig(bytes(cfg), 'c').os, 'linux')
  throwsCode(
    () => parseConfig(bytes({ ...cfg, config: { ExposedPorts: { '70000/tcp': {} } } }), 'c'),
    'INVALID_CONFIG',
    /\/config\/ExposedPorts\/70000~1tcp: invalid port/,
  )
  throwsCode(() => parseConfig(bytes({ ...cfg, config: { Env: ['NOEQUALS'] } }), 'c'), 'INVALID_CONFIG', /\/config\/Env\/0: .*VARNAME=VARVALUE/)
  throwsCode(() => parseConfig(bytes({ ...cfg, rootfs: { type: 'layers' } }), 'c'), 'INVALID_CONFIG', /\/rootfs\/diff_ids: required/)
  for (const bad of ['2024-13-01T00:00:00Z', '2024-01-02', '2024-01-02T25:00:00Z', 'yesterday', '2024-01-02T03:04:05']) assert.ok(rfc3339Problem(bad), bad)
  for (const good of ['2024-01-02T03:04:05Z', '2024-01-02T03:04:05.999999999-07:00', '2016-12-31T23:59:60Z'])
    assert.equal(rfc3339Problem(good), undefined, good)
})

test('parseLayoutFile and manifestMediaType', () => {
  assert.deepEqual(parseLayoutFile(bytes({ imageLayoutVersion: '1.0.0' }), 'oci-layout'), { imageLayoutVersion: '1.0.0' })
  throwsCode(() => parseLayoutFile(bytes({ imageLayoutVersion: '2.0.0' }), 'oci-layout'), 'UNSUPPORTED', /oci-layout: \/imageLayoutVersion: unsupported/)
  throwsCode(() => parseLayoutFile(Buffer.from('nope'), 'oci-layout'), 'INVALID_LAYOUT', /not valid JSON/)
  assert.equal(manifestMediaType(bytes({ schemaVersion: 2, manifests: [] }), 'x'), MediaType.OciIndex)
  assert.equal(manifestMediaType(bytes({ schemaVersion: 2, config: {}, layers: [] }), 'x'), MediaType.OciManifest)
  assert.equal(manifestMediaType(bytes({ mediaType: MediaType.DockerManifestList }), 'x'), MediaType.DockerManifestList)
  throwsCode(() => manifestMediaType(bytes({ schemaVersion: 1 }), 'x'), 'UNSUPPORTED')
  throwsCode(() => manifestMediaType(bytes({ a: 1 }), 'x'), 'INVALID_DOCUMENT')
})

test('parseDescriptor: required fields and size bounds', () => {
  assert.ok(parseDescriptor({ mediaType: 'a/b', digest: D('x'), size: 1 }, 'd'))
  throwsCode(() => parseDescriptor({ mediaType: 'a/b', digest: D('x'), size: 2 ** 53 }, 'd'), 'INVALID_DOCUMENT', /\/size/)
  throwsCode(() => parseDescriptor({ digest: D('x'), size: 1 }, 'd', '/config'), 'INVALID_DOCUMENT', /^d: \/config\/mediaType: required field is missing$/)
})

test('checkImage: diff_ids vs layers, history vs layers, os/arch', () => {
  const cfg = (ids: number, hist?: Array<{ empty_layer?: boolean }>): ImageConfig =>
    ({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: Array.from({ length: ids }, (_, i) => D(`d${i}`)) },
      ...(hist ? { history: hist } : {}),
    }) as ImageConfig
  assert.deepEqual(checkImage(manifest(), cfg(2), 'c'), [])
  assert.deepEqual(checkImage(manifest(), cfg(2, [{}, { empty_layer: true }, {}]), 'c'), [])
  assert.deepEqual(
    checkImage(manifest(), cfg(3), 'c').map((p) => p.pointer),
    ['/rootfs/diff_ids'],
  )
  assert.deepEqual(
    checkImage(manifest(), cfg(2, [{}]), 'c').map((p) => p.pointer),
    ['/history'],
  )
  assert.deepEqual(
    checkImage(manifest(), { ...cfg(2), os: '' }, 'c').map((p) => p.pointer),
    ['/os'],
  )
})

test('platforms: host, parse, format, matching with variant normalisation', () => {
  const h = hostPlatform()
  assert.ok(h.os && h.architecture && !['x64', 'ia32'].includes(h.architecture))
  if (process.arch === 'x64') assert.equal(h.architecture, 'amd64')
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' })
  assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' })
  assert.equal(formatPlatform(parsePlatform('linux/arm/v7')), 'linux/arm/v7')
  for (const bad of ['linux', 'linux/', '/amd64', 'linux/amd64/v8/x', 'Linux/AMD64', '']) throwsCode(() => parsePlatform(bad), 'USAGE', /expected os\/arch/)
  assert.ok(platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' }))
  assert.ok(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }))
  assert.ok(!platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' }))
  assert.ok(platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm' }))
  assert.ok(!platformMatches(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' }))
  assert.ok(!platformMatches(parsePlatform('linux/amd64'), undefined))
})

test('tags: ref.name grammar (image-spec annotations.md) and distribution grammar', () => {
  for (const ok of ['latest', 'v1.0.0-vendor.0', 'a--b', 'docker.io/library/alpine:3.18', 'x@y', 'a+b', 'A_1']) assert.ok(isValidTag(ok), ok)
  for (const bad of ['', '-x', 'x-', 'a//b', '/a', 'a b', 'a---b', 'a..b', 'é', 'a/']) assert.ok(!isValidTag(bad), bad)
  assert.ok(isValidTag('_x', { distribution: true }))
  assert.ok(!isValidTag('a/b', { distribution: true }))
  assert.ok(!isValidTag('x'.repeat(129), { distribution: true }))
  assert.equal(assertValidTag('v1'), 'v1')
  throwsCode(() => assertValidTag('bad tag'), 'TAG_INVALID', /invalid tag "bad tag"/)
})

test('convert: OCI <-> Docker v2s2 media types, OCI-only fields dropped, zstd and artifacts refused', () => {
  const m = manifest({
    annotations: { a: 'b' },
    layers: [{ ...layer('a'), annotations: { x: 'y' } }, layer('b', MediaType.OciLayer), layer('n', MediaType.OciLayerNondistGzip)],
  })
  const d = convertManifest(m, 'v2s2')
  assert.equal(d.mediaType, MediaType.DockerManifest)
  assert.equal(d.config.mediaType, MediaType.DockerConfig)
  assert.deepEqual(
    d.layers.map((l) => l.mediaType),
    [MediaType.DockerLayerGzip, MediaType.DockerLayer, MediaType.DockerForeignLayer],
  )
  assert.equal(d.annotations, undefined)
  assert.equal(d.layers[0]!.annotations, undefined)
  assert.deepEqual(d.layers[0]!.digest, m.layers[0]!.digest)
  assert.ok(m.annotations, 'input not mutated')
  assert.deepEqual(checkManifest(d, 'd', MediaType.DockerManifest), [])
  const back = convertManifest(d, 'oci')
  assert.deepEqual(
    back.layers.map((l) => l.mediaType),
    [MediaType.OciLayerGzip, MediaType.OciLayer, MediaType.OciLayerNondistGzip],
  )
  assert.equal(back.config.mediaType, MediaType.OciConfig)
  throwsCode(() => convertManifest(manifest({ layers: [layer('z', MediaType.OciLayerZstd)] }), 'v2s2'), 'UNSUPPORTED', /\/layers\/0 is zstd-compressed/)
  throwsCode(
    () => convertManifest(manifest({ config: { mediaType: MediaType.OciEmpty, digest: D('{}'), size: 2 }, artifactType: 'a/b' }), 'v2s2'),
    'UNSUPPORTED',
    /artifacts/,
  )
  throwsCode(() => convertManifest(manifest({ subject: layer('s', MediaType.OciManifest) }), 'v2s2'), 'UNSUPPORTED', /subject/)
  assert.equal(configMediaTypeFor('v2s2'), MediaType.DockerConfig)
  assert.equal(configMediaTypeFor('oci'), MediaType.OciConfig)
  const idx: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    annotations: { a: 'b' },
    manifests: [{ mediaType: MediaType.OciManifest, digest: D('m'), size: 1, platform: { os: 'linux', architecture: 'amd64' }, annotations: { k: 'v' } }],
  }
  const list = convertIndex(idx, 'v2s2')
  assert.equal(list.mediaType, MediaType.DockerManifestList)
  assert.equal(list.manifests[0]!.mediaType, MediaType.DockerManifest)
  assert.equal(list.manifests[0]!.annotations, undefined)
  assert.equal(list.annotations, undefined)
  assert.equal(convertIndex(list, 'oci').manifests[0]!.mediaType, MediaType.OciManifest)
  throwsCode(() => convertIndex({ ...idx, manifests: [{ mediaType: MediaType.OciManifest, digest: D('m'), size: 1 }] }, 'v2s2'), 'UNSUPPORTED', /no platform/)
  throwsCode(
    () =>
      convertIndex(
        { ...idx, manifests: [{ mediaType: MediaType.OciIndex, digest: D('m'), size: 1, platform: { os: 'linux', architecture: 'amd64' } }] },
        'v2s2',
      ),
    'UNSUPPORTED',
    /only list image manifests/,
  )
})

test('security: GHSA-77vh-xpmg-72qh ambiguous documents (a manifest with manifests, an index with layers) are refused', () => {
  const entry = { mediaType: MediaType.OciManifest, digest: D('m'), size: 1 }
  const both = { ...manifest(), manifests: [entry] }
  throwsCode(() => parseManifest(bytes(both), 'm'), 'INVALID_MANIFEST', /\/manifests: an image manifest has no "manifests" field/)
  const { mediaType: _m, ...bare } = both
  throwsCode(() => parseIndex(bytes({ ...bare }), 'i'), 'INVALID_INDEX', /\/config: an image index has no "config" or "layers" field/)
})
