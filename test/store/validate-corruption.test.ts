/**
 * The corruption suite: each damaged layout is reported precisely (document, JSON pointer,
 * code, message), through the library and through `lading validate` (exit 1, every problem
 * listed, no stack trace, no hang).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { validateLayout } from '../../src/store/validate-layout.js'
import type { Problem } from '../../src/spec/validate.js'
import { RawLayout, makeTar, sha256, type RawDescriptor, type RawImage } from '../helpers/raw-layout.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const cli = path.join(repoRoot, 'build/src/cli/main.js')
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

function lading(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, LADING_DEBUG: '' } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** One problem matching all given fields; the message by regex. */
function find(problems: Problem[], want: { code: string; source?: string; pointer?: string; message?: RegExp }): Problem {
  const hit = problems.find(
    (p) =>
      p.code === want.code &&
      (want.source === undefined || p.source === want.source) &&
      (want.pointer === undefined || p.pointer === want.pointer) &&
      (want.message === undefined || want.message.test(p.message)),
  )
  assert.ok(hit, `expected a problem ${JSON.stringify({ ...want, message: want.message?.source })}, got:\n${problems.map((p) => JSON.stringify(p)).join('\n')}`)
  return hit
}

/** The CLI agrees: exit 1, the problem line printed, a summary, and no stack trace. */
function assertCliInvalid(dir: string, lines: RegExp[], extra: string[] = []): void {
  const r = lading(['validate', '--layout', dir, ...extra])
  assert.equal(r.status, 1, `exit status; stderr: ${r.stderr}`)
  for (const l of lines) assert.match(r.stdout, l, `stderr: ${r.stderr}`)
  assert.match(r.stdout, /: invalid: \d+ problems?/)
  assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /, 'no stack trace')
  assert.doesNotMatch(r.stderr, /internal error/)
}

function manifestSource(img: RawImage | RawDescriptor): string {
  const d = 'manifestDescriptor' in img ? (img as RawImage).manifestDescriptor.digest : (img as RawDescriptor).digest
  return `blob ${d} (manifest)`
}

/** Store an edited manifest and point the tag at it (replacing the index entry). */
async function replaceManifest(l: RawLayout, img: RawImage, edit: (m: any) => void): Promise<RawDescriptor> {
  const m = structuredClone(img.manifest)
  edit(m)
  const desc = await l.writeJson(m, OCI_MANIFEST)
  const entry = l.index.manifests.find((e) => e.digest === img.manifestDescriptor.digest)!
  entry.digest = desc.digest
  entry.size = desc.size
  await l.writeIndex()
  return desc
}

async function withLayout(fn: (l: RawLayout) => Promise<void>): Promise<void> {
  const l = await RawLayout.create()
  try {
    await fn(l)
  } finally {
    await l.cleanup()
  }
}

test('a spec-conformant layout is valid (exit 0, counts every blob)', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 'v1', layers: 2 })
    await l.addImage({ tag: 'v2', layers: 1, seed: 'other' })
    const r = await validateLayout(l.dir)
    assert.deepEqual(r.problems, [])
    assert.equal(r.checked.blobs, 7, 'v1: 2 layers, config, manifest; v2: 1 layer, config, manifest')
    const c = lading(['validate', '--layout', l.dir])
    assert.equal(c.status, 0, c.stderr)
    assert.match(c.stdout, /valid \(7 blobs/)
    const j = lading(['validate', '--image', `${l.dir}:v1`, '--json'])
    assert.equal(j.status, 0, j.stderr)
    const out = JSON.parse(j.stdout)
    assert.equal(out.valid, true)
    assert.equal(out.checked.blobs, 4)
    assert.ok(img)
  }))

test('corruption: a flipped byte in a layer blob is a digest mismatch naming expected and actual', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't', layers: 2 })
    const file = l.blobPath(img.layers[1]!.digest)
    const buf = await fsp.readFile(file)
    buf[10] = buf[10]! ^ 0xff
    await fsp.writeFile(file, buf)
    const { problems } = await validateLayout(l.dir)
    const p = find(problems, {
      code: 'DIGEST_MISMATCH',
      source: manifestSource(img),
      pointer: '/layers/1/digest',
      message: new RegExp(`${img.layers[1]!.digest}: content hashes to ${sha256(buf)}`),
    })
    assert.equal(problems.length, 1, JSON.stringify(problems))
    assert.ok(p)
    assertCliInvalid(l.dir, [
      new RegExp(
        `^blob ${img.manifestDescriptor.digest} \\(manifest\\): /layers/1/digest: layer blob ${img.layers[1]!.digest}: content hashes to sha256:`,
        'm',
      ),
    ])
  }))

test('corruption: a flipped byte in the config and in a manifest is reported at the referencing descriptor', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't' })
    const cfile = l.blobPath(img.configDescriptor.digest)
    await fsp.writeFile(cfile, (await fsp.readFile(cfile, 'utf8')).replace('step 0', 'step 9'))
    const { problems } = await validateLayout(l.dir)
    find(problems, { code: 'DIGEST_MISMATCH', source: manifestSource(img), pointer: '/config/digest' })
    const mfile = l.blobPath(img.manifestDescriptor.digest)
    await fsp.writeFile(mfile, (await fsp.readFile(mfile, 'utf8')).replace('"schemaVersion":2', '"schemaVersion":3'))
    const r2 = await validateLayout(l.dir)
    find(r2.problems, { code: 'DIGEST_MISMATCH', source: 'index.json', pointer: '/manifests/0/digest' })
    find(r2.problems, { code: 'INVALID_MANIFEST', source: manifestSource(img), pointer: '/schemaVersion', message: /must be 2, got 3/ })
    assertCliInvalid(l.dir, [
      /^index\.json: \/manifests\/0\/digest: manifest blob sha256:[0-9a-f]{64}: content hashes to/m,
      /\/schemaVersion: must be 2, got 3$/m,
    ])
  }))

test('corruption: a truncated blob is a size mismatch', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't' })
    const file = l.blobPath(img.layers[0]!.digest)
    await fsp.truncate(file, img.layers[0]!.size - 7)
    const { problems } = await validateLayout(l.dir)
    find(problems, {
      code: 'SIZE_MISMATCH',
      source: manifestSource(img),
      pointer: '/layers/0/size',
      message: new RegExp(`descriptor says ${img.layers[0]!.size} bytes but blob ${img.layers[0]!.digest} has ${img.layers[0]!.size - 7} bytes`),
    })
    assert.equal(problems.length, 1)
    assertCliInvalid(l.dir, [/\/layers\/0\/size: descriptor says \d+ bytes but blob sha256:[0-9a-f]{64} has \d+ bytes$/m])
  }))

test('corruption: a descriptor with the wrong size (index.json entry and manifest layer)', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't' })
    const m = await replaceManifest(l, img, (man) => {
      man.layers[0].size += 1
    })
    l.index.manifests[0]!.size += 5
    await l.writeIndex()
    const { problems } = await validateLayout(l.dir)
    find(problems, { code: 'SIZE_MISMATCH', source: 'index.json', pointer: '/manifests/0/size', message: new RegExp(`descriptor says ${m.size + 5} bytes`) })
    // The manifest itself was not read (its size is wrong), so fix the entry and look again.
    l.index.manifests[0]!.size -= 5
    await l.writeIndex()
    const r2 = await validateLayout(l.dir)
    find(r2.problems, { code: 'SIZE_MISMATCH', source: manifestSource(m), pointer: '/layers/0/size' })
    assertCliInvalid(l.dir, [/\/layers\/0\/size: descriptor says/])
  }))

test('corruption: missing blobs (layer, config, manifest) are each reported with their path', () =>
  withLayout(async (l) => {
    const a = await l.addImage({ tag: 'a', layers: 2 })
    const b = await l.addImage({ tag: 'b', seed: 'b' })
    const c = await l.addImage({ tag: 'c', seed: 'c' })
    await fsp.rm(l.blobPath(a.layers[1]!.digest))
    await fsp.rm(l.blobPath(b.configDescriptor.digest))
    await fsp.rm(l.blobPath(c.manifestDescriptor.digest))
    const { problems } = await validateLayout(l.dir)
    find(problems, {
      code: 'BLOB_UNKNOWN',
      source: manifestSource(a),
      pointer: '/layers/1',
      message: /layer blob sha256:[0-9a-f]{64} is missing \(blobs\/sha256\//,
    })
    find(problems, { code: 'BLOB_UNKNOWN', source: manifestSource(b), pointer: '/config', message: /config blob .* is missing/ })
    find(problems, { code: 'BLOB_UNKNOWN', source: 'index.json', pointer: '/manifests/2', message: /manifest blob .* is missing/ })
    assert.equal(problems.length, 3, 'all problems are listed, not only the first')
    const r = lading(['validate', '--layout', l.dir])
    assert.equal(r.status, 1)
    assert.equal(r.stdout.trim().split('\n').length, 4, r.stdout)
    assert.match(r.stdout, /invalid: 3 problems/)
  }))

test('corruption: a manifest whose mediaType disagrees with its descriptor', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't' })
    const m = await replaceManifest(l, img, (man) => {
      man.mediaType = 'application/vnd.docker.distribution.manifest.v2+json'
    })
    const { problems } = await validateLayout(l.dir)
    find(problems, {
      code: 'INVALID_MANIFEST',
      source: manifestSource(m),
      pointer: '/mediaType',
      message:
        /is application\/vnd\.docker\.distribution\.manifest\.v2\+json but the document was referenced as application\/vnd\.oci\.image\.manifest\.v1\+json/,
    })
    // An index descriptor pointing at a manifest document.
    l.index.manifests[0]!.mediaType = 'application/vnd.oci.image.index.v1+json'
    await l.writeIndex()
    const r2 = await validateLayout(l.dir)
    find(r2.problems, { code: 'INVALID_INDEX', source: `blob ${m.digest} (index)`, pointer: '/mediaType', message: /not an image index/ })
    find(r2.problems, { code: 'INVALID_INDEX', source: `blob ${m.digest} (index)`, pointer: '/manifests', message: /required field is missing/ })
    assertCliInvalid(l.dir, [/\(index\): \/mediaType: is application\/vnd\.docker\.distribution\.manifest\.v2\+json, which is not an image index$/m])
  }))

test('corruption: index.json that is not JSON', () =>
  withLayout(async (l) => {
    await l.addImage({ tag: 't' })
    await l.writeIndex('{"schemaVersion": 2, "manifests": [')
    const { problems } = await validateLayout(l.dir)
    find(problems, { code: 'INVALID_JSON', source: 'index.json', pointer: '', message: /^not valid JSON: / })
    assertCliInvalid(l.dir, [/^index\.json: \/: not valid JSON: /m])
    await l.writeIndex(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))
    find((await validateLayout(l.dir)).problems, { code: 'INVALID_JSON', source: 'index.json', message: /not valid UTF-8/ })
  }))

test('corruption: an unknown imageLayoutVersion, and a missing oci-layout', () =>
  withLayout(async (l) => {
    await l.addImage({ tag: 't' })
    await fsp.writeFile(path.join(l.dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}')
    const { problems } = await validateLayout(l.dir)
    find(problems, { code: 'UNSUPPORTED', source: 'oci-layout', pointer: '/imageLayoutVersion', message: /unsupported image layout version "2\.0\.0"/ })
    assert.equal(problems.length, 1, 'the rest of the layout is still checked and is fine')
    assertCliInvalid(l.dir, [/^oci-layout: \/imageLayoutVersion: unsupported image layout version "2\.0\.0"/m])
    await fsp.rm(path.join(l.dir, 'oci-layout'))
    find((await validateLayout(l.dir)).problems, { code: 'INVALID_LAYOUT', source: 'oci-layout', message: /is missing: .* is not an OCI image layout/ })
  }))

test('corruption: digests with upper-case hex, the wrong length, an unknown algorithm', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't', layers: 3 })
    const hex = img.layers[0]!.digest.slice(7)
    const m = await replaceManifest(l, img, (man) => {
      man.layers[0].digest = 'sha256:' + hex.toUpperCase()
      man.layers[1].digest = man.layers[1].digest.slice(0, -2)
      man.layers[2].digest = 'md5:d41d8cd98f00b204e9800998ecf8427e'
    })
    l.index.manifests.push({ mediaType: OCI_MANIFEST, digest: 'sha256:' + 'A'.repeat(64), size: 10 })
    await l.writeIndex()
    const { problems } = await validateLayout(l.dir)
    const src = manifestSource(m)
    find(problems, { code: 'DIGEST_INVALID', source: src, pointer: '/layers/0/digest', message: /requires lowercase hex/ })
    find(problems, { code: 'DIGEST_INVALID', source: src, pointer: '/layers/1/digest', message: /requires 64 hex characters, got 62/ })
    find(problems, { code: 'DIGEST_INVALID', source: src, pointer: '/layers/2/digest', message: /unsupported algorithm "md5"/ })
    find(problems, { code: 'DIGEST_INVALID', source: 'index.json', pointer: '/manifests/1/digest', message: /lowercase hex/ })
    // The config's diff_ids still list three layers, which is right; only the digests are bad.
    assertCliInvalid(l.dir, [
      /\/layers\/0\/digest: invalid digest "sha256:[0-9A-F]{64}": sha256 requires lowercase hex$/m,
      /\/layers\/2\/digest: invalid digest "md5:/m,
      /^index\.json: \/manifests\/1\/digest: /m,
    ])
  }))

test('corruption: a config whose diff_ids do not match its layers (count, uncompressed digest, history)', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't', layers: 2 })
    const cfg = await l.rewriteJson(img.configDescriptor, (c) => {
      c.rootfs.diff_ids.pop()
    })
    const m = await replaceManifest(l, img, (man) => {
      man.config = cfg
    })
    const { problems } = await validateLayout(l.dir)
    find(problems, {
      code: 'INVALID_CONFIG',
      source: `blob ${cfg.digest} (config)`,
      pointer: '/rootfs/diff_ids',
      message: /has 1 diff_ids but the manifest has 2 layers/,
    })
    assert.ok(m)
    assertCliInvalid(l.dir, [/\(config\): \/rootfs\/diff_ids: has 1 diff_ids but the manifest has 2 layers$/m])

    // An uncompressed layer's diff_id must be its own digest; history must count the layers.
    const l2 = await RawLayout.create()
    try {
      const u = await l2.addImage({ tag: 'u', layers: 2, gzip: false })
      const cfg2 = await l2.rewriteJson(u.configDescriptor, (c) => {
        c.rootfs.diff_ids[1] = sha256(makeTar({ other: 'x' }))
        c.history.push({ created_by: 'extra' })
      })
      await replaceManifest(l2, u, (man) => {
        man.config = cfg2
      })
      const r = await validateLayout(l2.dir)
      find(r.problems, { code: 'INVALID_CONFIG', pointer: '/rootfs/diff_ids/1', message: /layer 1 is uncompressed with digest/ })
      find(r.problems, { code: 'INVALID_CONFIG', pointer: '/history', message: /has 3 entries that are not empty_layer but the manifest has 2 layers/ })
    } finally {
      await l2.cleanup()
    }
  }))

test('corruption: an index entry whose platform disagrees with the image config', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ layers: 1, architecture: 'arm64' })
    await l.addToIndex({ ...img.manifestDescriptor, platform: { os: 'linux', architecture: 'amd64' } }, 't')
    const { problems } = await validateLayout(l.dir)
    find(problems, {
      code: 'INVALID_INDEX',
      source: 'index.json',
      pointer: '/manifests/0/platform/architecture',
      message: /is "amd64" but the image config says "arm64"/,
    })
  }))

test('security: blobs that are symlinks, FIFOs or directories are problems, and a FIFO does not hang', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't', layers: 3 })
    const [a, b, c] = img.layers.map((x) => l.blobPath(x.digest)) as [string, string, string]
    const outside = path.join(l.dir, 'outside')
    await fsp.rename(a, outside)
    await fsp.symlink(outside, a)
    await fsp.rm(b)
    spawnSync('mkfifo', [b])
    await fsp.rm(c)
    await fsp.mkdir(c)
    const { problems } = await validateLayout(l.dir)
    find(problems, { code: 'INVALID_LAYOUT', pointer: '/layers/0', message: /is a symbolic link; blobs must be regular files/ })
    find(problems, { code: 'INVALID_LAYOUT', pointer: '/layers/1', message: /is a FIFO; blobs must be regular files/ })
    find(problems, { code: 'INVALID_LAYOUT', pointer: '/layers/2', message: /is a directory; blobs must be regular files/ })
    assertCliInvalid(l.dir, [/symbolic link/, /FIFO/])
    assert.equal(problems.length, 3, 'reported once, at the reference')
    // Unreferenced entries are judged too; a writer's temp file is not a blob yet.
    await fsp.symlink('/etc/passwd', l.blobPath(sha256('unreferenced')))
    await fsp.writeFile(path.join(l.dir, 'blobs', 'sha256', `.${'a'.repeat(64)}.tmp-1-abcdef`), 'partial')
    const again = await validateLayout(l.dir)
    find(again.problems, {
      code: 'INVALID_LAYOUT',
      source: `blobs/sha256/${sha256('unreferenced').slice(7)}`,
      pointer: '',
      message: /is a symbolic link; blobs must be regular files/,
    })
    assert.equal(again.problems.length, 4, JSON.stringify(again.problems))
  }))

test('security: an oversized JSON document is refused before parsing (SIZE_LIMIT)', () =>
  withLayout(async (l) => {
    const big = await l.writeBlob(' '.repeat(4 * 1024 * 1024 + 1) + '{}', OCI_MANIFEST)
    await l.addToIndex(big, 'big')
    const { problems } = await validateLayout(l.dir)
    find(problems, { code: 'SIZE_LIMIT', source: `blob ${big.digest} (manifest)`, pointer: '', message: /larger than the limit of 4194304 bytes/ })
  }))

test('a Docker schema 1 manifest is refused clearly (UNSUPPORTED)', () =>
  withLayout(async (l) => {
    const s1 = await l.writeJson({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }, 'application/vnd.docker.distribution.manifest.v1+prettyjws')
    await l.addToIndex(s1, 's1')
    const { problems } = await validateLayout(l.dir)
    find(problems, {
      code: 'UNSUPPORTED',
      source: `blob ${s1.digest} (manifest)`,
      pointer: '/schemaVersion',
      message: /Docker image manifest schema 1 is not supported/,
    })
    assert.equal(problems.length, 1, JSON.stringify(problems))
  }))

test('--image selects by tag, by digest and by platform; unknown tag is a problem', () =>
  withLayout(async (l) => {
    const good = await l.addImage({ tag: 'good' })
    const bad = await l.addImage({ tag: 'bad', seed: 'bad' })
    await fsp.rm(l.blobPath(bad.layers[0]!.digest))
    assert.deepEqual((await validateLayout(l.dir, { tag: 'good' })).problems, [])
    assert.equal((await validateLayout(l.dir, { tag: 'bad' })).problems.length, 1)
    assert.deepEqual((await validateLayout(l.dir, { digest: good.manifestDescriptor.digest })).problems, [])
    find((await validateLayout(l.dir, { tag: 'nope' })).problems, { code: 'NOT_FOUND', message: /no entry has the tag "nope"/ })
    // An index with two platforms: --platform follows only the matching manifest.
    const arm = await l.addImage({ architecture: 'arm64', seed: 'arm' })
    await fsp.rm(l.blobPath(arm.layers[0]!.digest))
    const idx = await l.writeJson(
      {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { ...good.manifestDescriptor, platform: { os: 'linux', architecture: 'amd64' } },
          { ...arm.manifestDescriptor, platform: { os: 'linux', architecture: 'arm64' } },
        ],
      },
      'application/vnd.oci.image.index.v1+json',
    )
    await l.addToIndex(idx, 'multi')
    assert.deepEqual((await validateLayout(l.dir, { tag: 'multi', platform: { os: 'linux', architecture: 'amd64' } })).problems, [])
    assert.equal((await validateLayout(l.dir, { tag: 'multi' })).problems.length, 1)
    find((await validateLayout(l.dir, { tag: 'multi', platform: { os: 'linux', architecture: 's390x' } })).problems, { code: 'PLATFORM_NOT_FOUND' })
    // A digest that index.json does not list directly (reachable only through the nested index).
    assert.deepEqual((await validateLayout(l.dir, { digest: good.manifestDescriptor.digest })).checked.blobs, 3)
    find((await validateLayout(l.dir, { digest: arm.manifestDescriptor.digest })).problems, { code: 'BLOB_UNKNOWN', pointer: '/layers/0' })
    const byDigest = lading(['validate', '--image', `${l.dir}@${arm.manifestDescriptor.digest}`])
    assert.equal(byDigest.status, 1)
    assert.match(byDigest.stdout, /\/layers\/0: layer blob sha256:[0-9a-f]{64} is missing/)
    const r = lading(['validate', '--image', `${l.dir}:multi`, '--platform', 'linux/amd64'])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    const r2 = lading(['validate', '--image', `${l.dir}:multi`])
    assert.equal(r2.status, 1)
  }))

test('CLI: usage errors exit 2; --type checks one document; --json lists problems', () =>
  withLayout(async (l) => {
    for (const args of [
      ['validate'],
      ['validate', '--layout', l.dir, '--image', l.dir],
      ['validate', '--type', 'bogus', 'x'],
      ['validate', '--type', 'manifest'],
      ['validate', '--layout', l.dir, 'extra'],
    ]) {
      const r = lading(args)
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /^lading: /)
    }
    const img = await l.addImage({ tag: 't' })
    const ok = lading(['validate', '--type', 'manifest', l.blobPath(img.manifestDescriptor.digest)])
    assert.equal(ok.status, 0, ok.stdout)
    const cfg = lading(['validate', '--type', 'config', l.blobPath(img.configDescriptor.digest)])
    assert.equal(cfg.status, 0, cfg.stdout)
    assert.equal(lading(['validate', '--type', 'index', path.join(l.dir, 'index.json')]).status, 0)
    assert.equal(lading(['validate', '--type', 'layout', path.join(l.dir, 'oci-layout')]).status, 0)
    const wrong = lading(['validate', '--type', 'config', l.blobPath(img.manifestDescriptor.digest), '--json'])
    assert.equal(wrong.status, 1)
    const j = JSON.parse(wrong.stdout)
    assert.equal(j.valid, false)
    assert.ok(j.checked.bytes > 0)
    assert.ok(j.problems.some((p: Problem) => p.pointer === '/architecture' && p.code === 'INVALID_CONFIG'))
    const missing = lading(['validate', '--type', 'manifest', path.join(l.dir, 'nope.json')])
    assert.equal(missing.status, 1)
    assert.match(missing.stdout, /nope\.json: \/: file does not exist/)
  }))

test('deep: a gzip layer whose diff_id is wrong (same count), corrupt gzip, and a compression mismatch', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't', layers: 2 })
    assert.deepEqual((await validateLayout(l.dir, { deep: true })).problems, [], 'the unchanged image passes deep validation')
    const wrongDiff = sha256(makeTar({ other: 'y' }))
    const cfg = await l.rewriteJson(img.configDescriptor, (c) => {
      c.rootfs.diff_ids[1] = wrongDiff
    })
    await replaceManifest(l, img, (man) => {
      man.config = cfg
    })
    assert.deepEqual((await validateLayout(l.dir)).problems, [], 'without deep, a plausible diff_id of a gzip layer is not checked')
    const { problems } = await validateLayout(l.dir, { deep: true })
    find(problems, {
      code: 'DIGEST_MISMATCH',
      source: `blob ${cfg.digest} (config)`,
      pointer: '/rootfs/diff_ids/1',
      message: new RegExp(`is ${wrongDiff} but layer ${img.layers[1]!.digest} decompresses to 2048 bytes with digest ${img.diffIds[1]}`),
    })
    assert.equal(problems.length, 1, JSON.stringify(problems))
    assertCliInvalid(l.dir, [/\(config\): \/rootfs\/diff_ids\/1: is sha256:[0-9a-f]{64} but layer/], ['--deep'])

    // A gzip layer whose bytes are damaged *and* re-described (digest and size match the damage).
    const l2 = await RawLayout.create()
    try {
      const u = await l2.addImage({ tag: 'u', layers: 2 })
      const gz = await fsp.readFile(l2.blobPath(u.layers[0]!.digest))
      const damaged = Buffer.concat([gz.subarray(0, 20), Buffer.alloc(30, 0x55), gz.subarray(50)])
      const bad = await l2.writeBlob(damaged, 'application/vnd.oci.image.layer.v1.tar+gzip')
      const plain = await l2.writeBlob(makeTar({ plain: 'z' }), 'application/vnd.oci.image.layer.v1.tar+gzip')
      await replaceManifest(l2, u, (man) => {
        man.layers[0] = bad
        man.layers[1] = plain
      })
      const r = await validateLayout(l2.dir, { deep: true })
      find(r.problems, { code: 'INVALID_TAR', pointer: '/layers/0', message: /corrupt gzip data/ })
      find(r.problems, { code: 'COMPRESSION_MISMATCH', pointer: '/layers/1', message: /media type says gzip but the data is none/ })
    } finally {
      await l2.cleanup()
    }
  }))

test('index.json: a tag on two entries, and a Docker manifest list as index.json, are problems', () =>
  withLayout(async (l) => {
    const a = await l.addImage({ tag: 't' })
    await l.addToIndex(a.manifestDescriptor, 't')
    const { problems } = await validateLayout(l.dir)
    find(problems, {
      code: 'TAG_INVALID',
      source: 'index.json',
      pointer: '/manifests/1/annotations/org.opencontainers.image.ref.name',
      message: /tag "t" is also on \/manifests\/0/,
    })
    l.index.manifests.pop()
    l.index.mediaType = 'application/vnd.docker.distribution.manifest.list.v2+json'
    await l.writeIndex()
    find((await validateLayout(l.dir)).problems, {
      code: 'INVALID_INDEX',
      source: 'index.json',
      pointer: '/mediaType',
      message: /referenced as application\/vnd\.oci\.image\.index\.v1\+json/,
    })
  }))

test('a digest referenced twice with different sizes is judged at each reference', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 'a' })
    await l.addToIndex({ ...img.manifestDescriptor, size: img.manifestDescriptor.size + 1 }, 'b')
    const { problems } = await validateLayout(l.dir)
    find(problems, { code: 'SIZE_MISMATCH', source: 'index.json', pointer: '/manifests/1/size' })
    assert.equal(problems.length, 1, JSON.stringify(problems))
  }))

test('artifacts with a subject, and index.json entries of unknown media types, are valid (image-layout.md §index.json)', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 'img' })
    const empty = await l.writeBlob('{}', 'application/vnd.oci.empty.v1+json')
    const sig = await l.writeBlob('signature bytes', 'application/vnd.example.signature')
    const art = await l.writeJson(
      {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.example.sig',
        config: { ...empty, data: Buffer.from('{}').toString('base64') },
        layers: [sig],
        subject: img.manifestDescriptor,
      },
      OCI_MANIFEST,
    )
    await l.addToIndex(art, 'sig')
    const xml = await l.writeBlob('<x/>', 'application/xml')
    await l.addToIndex(xml)
    const r = await validateLayout(l.dir)
    assert.deepEqual(r.problems, [])
    assert.equal(r.checked.blobs, 7, 'image (3), artifact manifest, empty config, signature layer, xml')
    // The subject must exist: remove the image's manifest and only the artifact's subject (and the tag) complain.
    await fsp.rm(l.blobPath(img.manifestDescriptor.digest))
    const r2 = await validateLayout(l.dir, { tag: 'sig' })
    find(r2.problems, { code: 'BLOB_UNKNOWN', source: `blob ${art.digest} (manifest)`, pointer: '/subject', message: /manifest blob .* is missing/ })
    assert.equal(r2.problems.length, 1)
  }))

test('sha512 blobs are verified with sha512 (image-spec descriptor.md §sha512)', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't' })
    const layer512 = await l.writeBlob(makeTar({ big: 'sha512 layer' }), 'application/vnd.oci.image.layer.v1.tar', 'sha512')
    assert.match(layer512.digest, /^sha512:[0-9a-f]{128}$/)
    const cfg = await l.rewriteJson(img.configDescriptor, (c) => {
      c.rootfs.diff_ids = [layer512.digest]
      c.history = [{ created_by: 'x' }]
    })
    const m = await replaceManifest(l, img, (man) => {
      man.layers = [layer512]
      man.config = cfg
    })
    assert.deepEqual((await validateLayout(l.dir, { deep: true })).problems, [])
    const file = l.blobPath(layer512.digest)
    const buf = await fsp.readFile(file)
    buf[0] = buf[0]! ^ 1
    await fsp.writeFile(file, buf)
    find((await validateLayout(l.dir)).problems, {
      code: 'DIGEST_MISMATCH',
      source: manifestSource(m),
      pointer: '/layers/0/digest',
      message: /content hashes to sha512:[0-9a-f]{128}$/,
    })
  }))

test('a layer whose media type misstates its compression is a problem without --deep', () =>
  withLayout(async (l) => {
    const img = await l.addImage({ tag: 't', layers: 2 })
    const plain = await l.writeBlob(makeTar({ plain: 'z' }), 'application/vnd.oci.image.layer.v1.tar+gzip')
    const gz = await fsp.readFile(l.blobPath(img.layers[1]!.digest))
    const gzAsTar = await l.writeBlob(gz, 'application/vnd.oci.image.layer.v1.tar')
    const m = await replaceManifest(l, img, (man) => {
      man.layers = [plain, gzAsTar]
    })
    const { problems } = await validateLayout(l.dir)
    find(problems, {
      code: 'COMPRESSION_MISMATCH',
      source: manifestSource(m),
      pointer: '/layers/0/mediaType',
      message: /tar\+gzip says gzip but layer blob sha256:[0-9a-f]{64} is an uncompressed tar$/,
    })
    find(problems, {
      code: 'COMPRESSION_MISMATCH',
      source: manifestSource(m),
      pointer: '/layers/1/mediaType',
      message: /v1\.tar says none but layer blob sha256:[0-9a-f]{64} is gzip$/,
    })
    assertCliInvalid(l.dir, [/\/layers\/1\/mediaType: application\/vnd\.oci\.image\.layer\.v1\.tar says none but layer blob/])
  }))

test('security: validate is read-only, and index.json or oci-layout as a FIFO or symlink neither hangs nor is followed', () =>
  withLayout(async (l) => {
    await l.addImage({ tag: 't', layers: 2 })
    const list = async (): Promise<string[]> => {
      const out: string[] = []
      for (const f of await fsp.readdir(l.dir, { recursive: true })) {
        const st = await fsp.lstat(path.join(l.dir, String(f)))
        out.push(`${f} ${st.size} ${st.mtimeMs} ${st.mode}`)
      }
      return out.sort()
    }
    const before = await list()
    await validateLayout(l.dir, { deep: true })
    lading(['validate', '--layout', l.dir])
    assert.deepEqual(await list(), before)
    await fsp.rm(path.join(l.dir, 'index.json'))
    spawnSync('mkfifo', [path.join(l.dir, 'index.json')])
    await fsp.rm(path.join(l.dir, 'oci-layout'))
    await fsp.symlink('/etc/hostname', path.join(l.dir, 'oci-layout'))
    const { problems } = await validateLayout(l.dir)
    find(problems, { code: 'INVALID_LAYOUT', source: 'index.json', message: /is a FIFO/ })
    find(problems, { code: 'INVALID_LAYOUT', source: 'oci-layout', message: /is a symbolic link/ })
  }))
