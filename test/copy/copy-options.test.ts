/**
 * `lading copy` options end to end (the CLI as a user runs it): --format, --dest-compress,
 * --all / --platform, --preserve-digests, --additional-tag, --digestfile, --referrers,
 * docker-archive to a stdout pipe, progress modes, and manifest-digest.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { VerifyingStream } from '../../src/digest/verify.js'
import { decompress } from '../../src/io/compression.js'
import { Layout } from '../../src/store/layout.js'
import { Annotation, MediaType } from '../../src/spec/media-types.js'
import { openSource } from '../../src/transport/open.js'
import { parseReference } from '../../src/transport/reference.js'
import { cliPath, lading, ladingOk, runOk } from '../helpers/cli.js'
import { findTool } from '../helpers/tools.js'
import { seeImage, type Seen } from './inspect.js'
import { initImage, initMultiPlatform, putReferrer, type StoredImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-copy-opts-' })
let img: StoredImage
let origin: Seen
let multi: Awaited<ReturnType<typeof initMultiPlatform>>
const O = (): string => `oci:${path.join(tmp, 'origin')}:t`
const M = (): string => `oci:${path.join(tmp, 'multi')}:t`

before(async () => {
  img = await initImage(path.join(tmp, 'origin'), {}, 't')
  origin = await seeImage(O())
  multi = await initMultiPlatform(path.join(tmp, 'multi'), 't')
})

/** Every layer of an image decompresses to its diff_id. */
async function assertLayersMatchDiffIds(ref: string, diffIds: readonly string[]): Promise<void> {
  const src = await openSource(parseReference(ref))
  try {
    const raw = await src.getManifest()
    const m = JSON.parse(raw.bytes.toString()) as { layers: Array<{ mediaType: string; digest: any; size: number }> }
    for (const [i, l] of m.layers.entries()) {
      const v = new VerifyingStream({ digest: diffIds[i] as any, name: `layer ${i}` })
      const plain = await decompress(await src.getBlob(l as any))
      for await (const _ of plain.pipe(v)) {
        /* drain */
      }
    }
  } finally {
    await src.close()
  }
}

test('copy --format v2s2 then --format oci: digests change, config and diff_ids do not', async () => {
  const v2 = `dir:${path.join(tmp, 'v2s2')}`
  ladingOk(['copy', '-q', '--format', 'v2s2', O(), v2])
  const seen = await seeImage(v2)
  assert.equal(seen.mediaType, MediaType.DockerManifest)
  assert.ok(seen.layers.every((l) => l.mediaType === MediaType.DockerLayerGzip))
  assert.notEqual(seen.manifestDigest, origin.manifestDigest)
  assert.equal(seen.configDigest, origin.configDigest)
  assert.deepEqual(
    seen.layers.map((l) => l.digest),
    origin.layers.map((l) => l.digest),
    'layer blobs are untouched',
  )
  const raw = JSON.parse(await fsp.readFile(path.join(tmp, 'v2s2', 'manifest.json'), 'utf8'))
  assert.equal(raw.config.mediaType, MediaType.DockerConfig)
  const back = `oci:${path.join(tmp, 'v2s2-back')}:t`
  ladingOk(['copy', '-q', '--format', 'oci', v2, back])
  const seenBack = await seeImage(back)
  assert.equal(seenBack.mediaType, MediaType.OciManifest)
  assert.deepEqual(seenBack.diffIds, origin.diffIds)
})

test('copy --dest-compress-format zstd and gzip: new layer digests, same diff_ids', async () => {
  const z = `oci:${path.join(tmp, 'zstd')}:t`
  ladingOk(['copy', '-q', '--dest-compress-format', 'zstd', O(), z])
  const seen = await seeImage(z)
  assert.ok(
    seen.layers.every((l) => l.mediaType === MediaType.OciLayerZstd),
    JSON.stringify(seen.layers),
  )
  assert.notDeepEqual(
    seen.layers.map((l) => l.digest),
    origin.layers.map((l) => l.digest),
  )
  assert.deepEqual(seen.diffIds, origin.diffIds)
  await assertLayersMatchDiffIds(z, origin.diffIds)
  // From uncompressed layers (a docker-archive) to gzip.
  const da = `docker-archive:${path.join(tmp, 'plain.tar')}`
  ladingOk(['copy', '-q', O(), da])
  const g = `oci:${path.join(tmp, 'gz')}:t`
  ladingOk(['copy', '-q', '--dest-compress-format', 'gzip', '--dest-compress-level', '1', da, g])
  const seenG = await seeImage(g)
  assert.ok(
    seenG.layers.every((l) => l.mediaType === MediaType.OciLayerGzip),
    JSON.stringify(seenG.layers),
  )
  await assertLayersMatchDiffIds(g, origin.diffIds)
  if (findTool('skopeo')) runOk('skopeo', ['inspect', z])
})

test('copy --all keeps the index digest; --platform picks one image; two platforms make a reduced index', async () => {
  const all = path.join(tmp, 'all')
  ladingOk(['copy', '-q', '--all', M(), `oci:${all}:t`])
  const layout = await Layout.open(all)
  const top = await layout.resolveTag('t')
  assert.equal(top.digest, multi.index.digest)
  for (const im of multi.images) assert.ok(await layout.hasBlob(im.manifest.digest))
  for (const im of multi.images) for (const l of im.layers) assert.ok(await layout.hasBlob(l.digest))

  const one = `oci:${path.join(tmp, 'arm64')}:t`
  ladingOk(['copy', '-q', '--platform', 'linux/arm64', M(), one])
  assert.equal((await seeImage(one)).manifestDigest, multi.images[1]!.manifest.digest)

  const both = path.join(tmp, 'both')
  ladingOk(['copy', '-q', '--platform', 'linux/arm64', '--platform', 'linux/amd64', M(), `oci:${both}:t`])
  const idx = JSON.parse((await (await Layout.open(both)).readBlob(await (await Layout.open(both)).resolveTag('t'))).toString())
  assert.equal(idx.manifests.length, 2)
  assert.deepEqual(
    idx.manifests.map((d: { platform: { architecture: string } }) => d.platform.architecture),
    ['arm64', 'amd64'],
  )

  const none = lading(['copy', '-q', '--platform', 'linux/s390x', M(), `oci:${path.join(tmp, 'none')}:t`])
  assert.equal(none.status, 1)
  assert.match(none.stderr, /no image for platform linux\/s390x.*linux\/amd64, linux\/arm64\/v8/)

  // --all into a single-image destination is refused with one clear line.
  const da = lading(['copy', '-q', '--all', M(), `docker-archive:${path.join(tmp, 'all.tar')}`])
  assert.equal(da.status, 1)
  assert.match(da.stderr, /^lading: docker-archive:.* holds one image, not an index/)
})

test('copy --preserve-digests refuses conversion and recompression, writing nothing', async () => {
  for (const [args, re] of [
    [['--dest-compress-format', 'zstd'], /--preserve-digests: refusing to copy: recompressing 2 layer\(s\)/],
    [['--format', 'v2s2'], /--preserve-digests: refusing to copy: converting/],
  ] as const) {
    const dir = path.join(tmp, `pd-${args[1]}`)
    const r = lading(['copy', '--preserve-digests', ...args, O(), `oci:${dir}:t`])
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, re)
    // Nothing at the destination: the layout this failed copy created is removed again.
    await assert.rejects(fsp.lstat(dir), { code: 'ENOENT' }, 'not a single blob moved')
  }
  const da = lading(['copy', '--preserve-digests', O(), `docker-archive:${path.join(tmp, 'pd.tar')}`])
  assert.equal(da.status, 1)
  assert.match(da.stderr, /--preserve-digests/)
  await assert.rejects(fsp.stat(path.join(tmp, 'pd.tar')))
  // Without a change it is allowed.
  ladingOk(['copy', '-q', '--preserve-digests', O(), `dir:${path.join(tmp, 'pd-ok')}`])
})

test('copy --additional-tag and --digestfile', async () => {
  const dir = path.join(tmp, 'tags')
  const df = path.join(tmp, 'digest.txt')
  ladingOk(['copy', '-q', '--additional-tag', 'v2', '--additional-tag', 'stable', '--digestfile', df, O(), `oci:${dir}:v1`])
  const tags = (await (await Layout.open(dir)).listTags()).map((t) => t.tag).sort()
  assert.deepEqual(tags, ['stable', 'v1', 'v2'])
  assert.equal(await fsp.readFile(df, 'utf8'), origin.manifestDigest)
  const tar = path.join(tmp, 'tags.tar')
  ladingOk(['copy', '-q', '--additional-tag', 'other/name:x', '--additional-tag', 'y', O(), `docker-archive:${tar}:example/app:v1`])
  const manifest = JSON.parse(runOk('tar', ['-xOf', tar, 'manifest.json']).stdout)
  assert.deepEqual(manifest[0].RepoTags, ['docker.io/example/app:v1', 'docker.io/other/name:x', 'docker.io/example/app:y'])
  // Each tag names the image when read back.
  assert.equal((await seeImage(`docker-archive:${tar}:other/name:x`)).configDigest, origin.configDigest)
})

test('copy to docker-archive:- streams the archive to a pipe; progress stays on stderr', async () => {
  const out = path.join(tmp, 'piped.tar')
  // A real pipe (not a file) as stdout: the writer must never seek.
  const r = spawnSync('sh', ['-c', `"${process.execPath}" "${cliPath}" copy --progress=plain "${O()}" docker-archive:-:example/app:p | cat > "${out}"`], {
    encoding: 'utf8',
  })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, /Copying blob sha256:/)
  assert.match(r.stderr, /Copied sha256:/)
  const seen = await seeImage(`docker-archive:${out}`)
  assert.equal(seen.configDigest, origin.configDigest)
  assert.deepEqual(seen.diffIds, origin.diffIds)
  if (findTool('skopeo')) runOk('skopeo', ['inspect', `docker-archive:${out}`])
  // And read from a pipe (stdin) as a source.
  const again = `oci:${path.join(tmp, 'from-stdin')}:t`
  const r2 = spawnSync('sh', ['-c', `cat "${out}" | "${process.execPath}" "${cliPath}" copy -q docker-archive:- "${again}"`], { encoding: 'utf8' })
  assert.equal(r2.status, 0, r2.stderr)
  assert.deepEqual((await seeImage(again)).diffIds, origin.diffIds)
  // oci-archive:- and /dev/stdout the same way.
  const oa = path.join(tmp, 'piped-oci.tar')
  const r3 = spawnSync('sh', ['-c', `"${process.execPath}" "${cliPath}" copy -q "${O()}" oci-archive:/dev/stdout:t | cat > "${oa}"`], { encoding: 'utf8' })
  assert.equal(r3.status, 0, r3.stderr)
  assert.equal((await seeImage(`oci-archive:${oa}:t`)).manifestDigest, origin.manifestDigest)
})

test('copy --progress=json writes one JSON event per line on stderr; --quiet writes nothing', () => {
  const r = ladingOk(['copy', '--progress=json', O(), `oci:${path.join(tmp, 'json')}:t`])
  assert.equal(r.stdout, '')
  const events = r.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string })
  assert.ok(events.some((e) => e.type === 'blob-start'))
  assert.equal(events.filter((e) => e.type === 'blob-done').length, 3)
  assert.equal(events.at(-1)!.type, 'done')
  const again = ladingOk(['copy', '--progress=json', O(), `oci:${path.join(tmp, 'json')}:t`])
  const ev2 = again.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string })
  assert.equal(ev2.filter((e) => e.type === 'blob-exists').length, 3, 'a rerun sends nothing')
  const q = ladingOk(['copy', '-q', O(), `oci:${path.join(tmp, 'quiet')}:t`])
  assert.equal(q.stderr, '')
  assert.equal(q.stdout, '')
})

test('copy --referrers copies an artifact whose subject is the image', async () => {
  const src = path.join(tmp, 'with-referrer')
  await initImage(src, {}, 't')
  const layout = await Layout.open(src)
  const subject = await layout.resolveTag('t')
  const ref = await putReferrer(layout, subject)
  const dst = path.join(tmp, 'referrer-dst')
  const r = ladingOk(['copy', '--progress=plain', '--referrers', `oci:${src}:t`, `oci:${dst}:t`])
  assert.match(r.stderr, /1 referrer/)
  const idx = await (await Layout.open(dst)).readIndex()
  assert.ok(
    idx.manifests.some((d) => d.digest === ref.digest && d.annotations?.[Annotation.RefName] === undefined),
    'the referrer is listed (untagged)',
  )
  assert.ok(await (await Layout.open(dst)).hasBlob(ref.digest))
  // Without --referrers it stays behind.
  const dst2 = path.join(tmp, 'referrer-none')
  ladingOk(['copy', '-q', `oci:${src}:t`, `oci:${dst2}:t`])
  assert.ok(!(await (await Layout.open(dst2)).hasBlob(ref.digest)))
})

test('manifest-digest prints the digest of the file bytes', async () => {
  const f = path.join(tmp, 'm.json')
  await fsp.writeFile(f, await (await Layout.open(path.join(tmp, 'origin'))).readBlob(img.manifest))
  assert.equal(ladingOk(['manifest-digest', f]).stdout, `${img.manifest.digest}\n`)
  if (findTool('skopeo')) assert.equal(runOk('skopeo', ['manifest-digest', f]).stdout.trim(), img.manifest.digest)
  await fsp.writeFile(f, 'not json')
  const r = lading(['manifest-digest', f])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^lading: /)
})

test('copy --format v2s2 of zstd layers fails before any blob moves', async () => {
  const z = `oci:${path.join(tmp, 'zstd-src')}:t`
  ladingOk(['copy', '-q', '--dest-compress-format', 'zstd', O(), z])
  const dst = path.join(tmp, 'zstd-to-v2s2')
  const r = lading(['copy', '-q', '--format', 'v2s2', z, `dir:${dst}`])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^lading: cannot convert to Docker v2 schema 2: \/layers\/0 is zstd-compressed/)
  await assert.rejects(fsp.lstat(dst), { code: 'ENOENT' }, 'nothing copied: the dir: this copy made is removed again')
  // With recompression to gzip it works.
  ladingOk(['copy', '-q', '--format', 'v2s2', '--dest-compress', '--dest-compress-format', 'gzip', z, `dir:${dst}`])
  assert.deepEqual((await seeImage(`dir:${dst}`)).diffIds, origin.diffIds)
})

test('copy usage errors exit 2 with one line naming what was expected, before anything is opened', () => {
  const cases: Array<[string[], RegExp]> = [
    [['copy', 'busybox', 'oci:x'], /^lading: invalid image reference "busybox": unknown transport .*expected one of oci:DIR/],
    [['copy', 'oci:/nope:t', 'docker://Bad/x'], /repository names must be lowercase/],
    [['copy', '--format', 'docker', 'oci:/nope:t', 'oci:/nope2:t'], /--format: expected oci or v2s2/],
    [['copy', '--dest-compress-format', 'lz4', 'oci:/nope:t', 'oci:/nope2:t'], /unknown compression "lz4"/],
    [['copy', '--platform', 'linux', 'oci:/nope:t', 'oci:/nope2:t'], /invalid platform "linux"/],
    [['copy', '--all', '--platform', 'linux/amd64', 'oci:/nope:t', 'oci:/nope2:t'], /--all and --platform cannot be combined/],
    [
      ['copy', '--dest-compress-level', '5', '--dest-decompress', 'oci:/nope:t', 'oci:/nope2:t'],
      /--dest-decompress and --dest-compress-level cannot be combined/,
    ],
    [['copy', '--progress', 'fancy', 'oci:/nope:t', 'oci:/nope2:t'], /--progress: expected json, plain or tty/],
  ]
  for (const [args, re] of cases) {
    const r = lading(args)
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re)
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  }
})
