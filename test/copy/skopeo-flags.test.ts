/**
 * Issue 10 items 11 and 12: `lading copy` takes skopeo's spellings with skopeo's meaning, and
 * stores layers compressed where skopeo does (checked against the real `skopeo copy` when it is
 * installed): oci:, oci-archive: and docker:// compress uncompressed layers, dir: keeps them as
 * they are (--dest-compress compresses), --dest-decompress stores them uncompressed, and
 * --preserve-digests keeps every layer as it is.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { MediaType } from '../../src/spec/media-types.js'
import { lading, ladingOk, runOk } from '../helpers/cli.js'
import { requireTool } from '../helpers/tools.js'
import { seeImage } from './inspect.js'
import { initImage, initMultiPlatform, type StoredImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-skopeo-flags-' })
let img: StoredImage
let archive: string
const O = (): string => `oci:${path.join(tmp, 'origin')}:t`

before(async () => {
  // Repetitive layers: gzip makes them clearly smaller than the tar.
  img = await initImage(path.join(tmp, 'origin'), {}, 't')
  archive = `docker-archive:${path.join(tmp, 'plain.tar')}`
  ladingOk(['copy', '-q', O(), archive])
})

const kinds = (layers: Array<{ mediaType: string }>): string[] => layers.map((l) => l.mediaType)
const total = (layers: Array<{ size: number }>): number => layers.reduce((n, l) => n + l.size, 0)

test('regression: docker-archive: -> oci: stores layers gzip-compressed by default, as skopeo does', async (t) => {
  const dest = `oci:${path.join(tmp, 'from-archive')}:t`
  ladingOk(['copy', '-q', archive, dest])
  const seen = await seeImage(dest)
  const plain = await seeImage(archive)
  assert.deepEqual(
    kinds(plain.layers),
    [MediaType.DockerLayer, MediaType.DockerLayer].map(() => plain.layers[0]!.mediaType),
  )
  assert.ok(
    seen.layers.every((l) => l.mediaType === MediaType.OciLayerGzip),
    kinds(seen.layers).join(', '),
  )
  assert.deepEqual(seen.diffIds, img.diffIds)
  assert.ok(total(seen.layers) < total(plain.layers) * 0.9, `compressed ${total(seen.layers)} B vs ${total(plain.layers)} B uncompressed`)
  // oci-archive: is an oci layout in a tar: the same rule.
  const oa = `oci-archive:${path.join(tmp, 'from-archive.tar')}:t`
  ladingOk(['copy', '-q', archive, oa])
  assert.ok((await seeImage(oa)).layers.every((l) => l.mediaType === MediaType.OciLayerGzip))
  if (!requireTool(t, 'skopeo')) return
  const sk = `oci:${path.join(tmp, 'skopeo-from-archive')}:t`
  runOk('skopeo', ['copy', '-q', archive, sk])
  const bySkopeo = await seeImage(sk)
  assert.deepEqual(kinds(seen.layers), kinds(bySkopeo.layers), 'the same media types as skopeo')
  // Same compression, different gzip encoders: sizes within a few percent of skopeo's.
  const ratio = total(seen.layers) / total(bySkopeo.layers)
  assert.ok(ratio > 0.9 && ratio < 1.1, `lading ${total(seen.layers)} B vs skopeo ${total(bySkopeo.layers)} B`)
})

test('regression: --dest-decompress stores layers uncompressed; from there --preserve-digests keeps them so, and a plain copy compresses them', async () => {
  const plain = `oci:${path.join(tmp, 'decompressed')}:t`
  const r = ladingOk(['copy', '--progress', 'plain', '--dest-decompress', O(), plain])
  const seen = await seeImage(plain)
  assert.ok(
    seen.layers.every((l) => l.mediaType === MediaType.OciLayer),
    kinds(seen.layers).join(', '),
  )
  assert.deepEqual(
    seen.layers.map((l) => l.digest),
    img.diffIds,
  )
  // Item 15: decompressing is said as such, not as "recompressing".
  assert.match(r.stderr, /, decompressing\)/)
  assert.doesNotMatch(r.stderr, /recompressing/)
  const kept = `oci:${path.join(tmp, 'kept')}:t`
  ladingOk(['copy', '-q', '--preserve-digests', plain, kept])
  assert.deepEqual(
    (await seeImage(kept)).layers.map((l) => l.digest),
    img.diffIds,
    'the uncompressed blobs, byte for byte',
  )
  const again = `oci:${path.join(tmp, 'recompressed')}:t`
  const r2 = ladingOk(['copy', '--progress', 'plain', plain, again])
  assert.ok((await seeImage(again)).layers.every((l) => l.mediaType === MediaType.OciLayerGzip))
  assert.match(r2.stderr, /, compressing\)/)
})

test("regression: dir: keeps layers as they are; --dest-compress compresses them (skopeo's boolean, which takes no argument)", async (t) => {
  const d1 = path.join(tmp, 'dir-plain')
  ladingOk(['copy', '-q', archive, `dir:${d1}`])
  assert.deepEqual(
    (await seeImage(`dir:${d1}`)).layers.map((l) => l.digest),
    img.diffIds,
  )
  // `--dest-compress` followed by the source: the source must not be taken as its value.
  const d2 = path.join(tmp, 'dir-gz')
  ladingOk(['copy', '-q', '--dest-compress', archive, `dir:${d2}`])
  const gz = await seeImage(`dir:${d2}`)
  assert.ok(
    gz.layers.every((l) => /gzip$/.test(l.mediaType)),
    kinds(gz.layers).join(', '),
  )
  assert.deepEqual(gz.diffIds, img.diffIds)
  const d3 = path.join(tmp, 'dir-zstd')
  ladingOk(['copy', '-q', '--dest-compress', '--dest-compress-format', 'zstd', '--format', 'oci', archive, `dir:${d3}`])
  assert.ok((await seeImage(`dir:${d3}`)).layers.every((l) => l.mediaType === MediaType.OciLayerZstd))
  // --dest-compress-format alone leaves dir: as it is (skopeo: only destinations that compress use it).
  const d4 = path.join(tmp, 'dir-format-only')
  ladingOk(['copy', '-q', '--dest-compress-format', 'zstd', O(), `dir:${d4}`])
  assert.deepEqual(
    (await seeImage(`dir:${d4}`)).layers.map((l) => l.digest),
    img.layers.map((l) => l.digest),
  )
  if (!requireTool(t, 'skopeo')) return
  for (const [args, sameAs] of [
    [[], d1],
    [['--dest-compress'], d2],
  ] as const) {
    const sk = path.join(tmp, `skopeo-dir-${args.length}`)
    runOk('skopeo', ['copy', '-q', ...args, archive, `dir:${sk}`])
    // skopeo labels the docker-archive's plain layers gzip (its source reports them so); compare bytes.
    const a = await seeImage(`dir:${sk}`)
    const b = await seeImage(`dir:${sameAs}`)
    assert.equal(a.layers[0]!.digest === img.diffIds[0], b.layers[0]!.digest === img.diffIds[0], `skopeo ${args.join(' ')}: compressed or not alike`)
  }
})

test('regression: --dest-compress-format zstd recompresses gzip layers for oci:, as skopeo does', async (t) => {
  const z = `oci:${path.join(tmp, 'zstd')}:t`
  ladingOk(['copy', '-q', '--dest-compress-format', 'zstd', O(), z])
  const seen = await seeImage(z)
  assert.ok(seen.layers.every((l) => l.mediaType === MediaType.OciLayerZstd))
  assert.deepEqual(seen.diffIds, img.diffIds)
  if (!requireTool(t, 'skopeo')) return
  const sk = `oci:${path.join(tmp, 'skopeo-zstd')}:t`
  runOk('skopeo', ['copy', '-q', '--dest-compress-format', 'zstd', O(), sk])
  assert.deepEqual(kinds((await seeImage(sk)).layers), kinds(seen.layers))
})

test('regression: --multi-arch all|system and --override-arch/--override-os/--override-variant choose images as skopeo does', async () => {
  await initMultiPlatform(path.join(tmp, 'multi'), 't')
  const M = `oci:${path.join(tmp, 'multi')}:t`
  const all = path.join(tmp, 'multi-all')
  ladingOk(['copy', '-q', '--multi-arch', 'all', M, `oci:${all}:t`])
  const idx = JSON.parse(ladingOk(['inspect', '--image', `${all}:t`, '--raw']).stdout)
  assert.equal(idx.manifests.length, 2)
  const arm = `oci:${path.join(tmp, 'multi-arm')}:t`
  ladingOk(['copy', '-q', '--override-arch', 'arm64', '--override-variant', 'v8', '--override-os', 'linux', M, arm])
  assert.equal(JSON.parse((await seeImage(arm)).configBytes).architecture, 'arm64')
  const amd = `oci:${path.join(tmp, 'multi-amd')}:t`
  ladingOk(['copy', '-q', '--override-arch', 'amd64', '--multi-arch', 'system', M, amd])
  assert.equal(JSON.parse((await seeImage(amd)).configBytes).architecture, 'amd64')
})

test('regression: skopeo flags that conflict or are unsupported are usage errors before anything is opened', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--multi-arch', 'index-only'], /--multi-arch: expected system or all, got "index-only" \(index-only is not supported/],
    [['--multi-arch', 'every'], /--multi-arch: expected system or all/],
    [['--multi-arch', 'all', '--platform', 'linux/amd64'], /--multi-arch all and --platform cannot be combined/],
    [['--override-arch', 'arm64', '--platform', 'linux/amd64'], /--platform and --override-arch\/--override-os\/--override-variant cannot be combined/],
    [['--dest-compress', '--dest-decompress'], /--dest-decompress and --dest-compress cannot be combined/],
    [['--dest-decompress', '--dest-compress-format', 'gzip'], /--dest-decompress and --dest-compress-format cannot be combined/],
    [['--dest-compress-format', 'none'], /--dest-compress-format: expected gzip or zstd, got "none" \(use --dest-decompress\)/],
    [['--retry-times', '-1'], /--retry-times: expected an integer from 0 to 100/],
    [['--remove-signatures', '--referrers'], /--remove-signatures and --referrers cannot be combined/],
  ]
  for (const [args, re] of cases) {
    const r = lading(['copy', ...args, 'oci:/nonexistent-src:t', `oci:${path.join(tmp, 'never')}:t`])
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.split('\n').length, 2, r.stderr)
  }
})

test("--retry-times and --remove-signatures are accepted with skopeo's meaning", async () => {
  const dest = `oci:${path.join(tmp, 'flags-ok')}:t`
  ladingOk(['copy', '-q', '--retry-times', '2', '--remove-signatures', O(), dest])
  assert.deepEqual(
    (await seeImage(dest)).layers.map((l) => l.digest),
    img.layers.map((l) => l.digest),
  )
})
