/**
 * Interoperability of `lading validate` with the real tools:
 * - layouts written by umoci (init, new, config, unpack + repack of a directory) and by
 *   `skopeo copy` into oci: (OCI and Docker v2s2 media types) pass `lading validate`;
 * - documents Lading writes (the raw-layout helper's spec-conformant documents, and
 *   store/image.ts writeImage) pass `oci-image-tool validate --type imageIndex|manifest|config`;
 * - a layout damaged after umoci wrote it fails with the precise problem.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, promises as fsp } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { validateLayout } from '../../src/store/validate-layout.js'
import { RawLayout } from '../helpers/raw-layout.js'
import { requireTool } from '../helpers/tools.js'
import { tempDir } from '../fixtures/temp.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const cli = path.join(repoRoot, 'build/src/cli/main.js')

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, ...opts })
  if (r.error) throw r.error
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

function ok(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = run(cmd, args, opts)
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}${r.stdout}`)
  return r.stdout
}

function ladingValidate(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return run(process.execPath, [cli, 'validate', ...args])
}

function assertValid(dir: string): void {
  const r = ladingValidate(['--layout', dir])
  assert.equal(r.status, 0, `lading validate --layout ${dir}:\n${r.stdout}${r.stderr}`)
  assert.match(r.stdout, /: valid \(/)
}

/** umoci: init, new, config, unpack, add files, repack, config again. Returns the layout dir. */
function buildWithUmoci(dir: string): string {
  const layout = path.join(dir, 'umoci')
  ok('umoci', ['init', '--layout', layout])
  ok('umoci', ['new', '--image', `${layout}:base`])
  ok('umoci', [
    'config',
    '--image',
    `${layout}:base`,
    '--config.cmd',
    '/bin/sh',
    '--config.env',
    'A=1',
    '--config.exposedports',
    '8080/tcp',
    '--author',
    'test',
    '--tag',
    'configured',
  ])
  const bundle = path.join(dir, 'bundle')
  ok('umoci', ['unpack', '--image', `${layout}:configured`, bundle])
  return layout.concat('\0', bundle)
}

test('interop: layouts written by umoci (init, new, config, unpack + repack) pass lading validate', async (t) => {
  if (!requireTool(t, 'umoci')) return
  const dir = tempDir(t, { prefix: 'lading-interop-' })
  const [layout, bundle] = buildWithUmoci(dir).split('\0') as [string, string]
  assertValid(layout) // init + new (no layers) + config
  await fsp.mkdir(path.join(bundle, 'rootfs', 'etc'), { recursive: true })
  await fsp.writeFile(path.join(bundle, 'rootfs', 'etc', 'hello'), 'hello from a test\n')
  await fsp.writeFile(path.join(bundle, 'rootfs', 'big'), Buffer.alloc(300_000, 7))
  await fsp.symlink('etc/hello', path.join(bundle, 'rootfs', 'link'))
  ok('umoci', ['repack', '--image', `${layout}:repacked`, bundle])
  ok('umoci', ['config', '--image', `${layout}:repacked`, '--config.workingdir', '/etc', '--tag', 'final'])
  assertValid(layout)
  const r = await validateLayout(layout, { tag: 'final' })
  assert.deepEqual(r.problems, [])
  assert.equal(r.checked.blobs, 3, 'manifest, config, one layer')
  assert.ok(r.checked.bytes > 100, 'the layer was hashed')

  // Now damage umoci's layout: the layer blob loses its last byte.
  const idx = JSON.parse(await fsp.readFile(path.join(layout, 'index.json'), 'utf8'))
  const entry = idx.manifests.find((m: any) => m.annotations['org.opencontainers.image.ref.name'] === 'final')
  const manifest = JSON.parse(await fsp.readFile(path.join(layout, 'blobs', 'sha256', entry.digest.slice(7)), 'utf8'))
  const layerFile = path.join(layout, 'blobs', 'sha256', manifest.layers[0].digest.slice(7))
  await fsp.truncate(layerFile, manifest.layers[0].size - 1)
  const bad = ladingValidate(['--image', `${layout}:final`])
  assert.equal(bad.status, 1)
  assert.match(
    bad.stdout,
    new RegExp(
      `^blob ${entry.digest} \\(manifest\\): /layers/0/size: descriptor says ${manifest.layers[0].size} bytes but blob ${manifest.layers[0].digest} has ${manifest.layers[0].size - 1} bytes$`,
      'm',
    ),
  )
})

test('interop: skopeo copy oci:A:t oci:B:t (OCI and --format v2s2) passes lading validate', async (t) => {
  if (!requireTool(t, 'skopeo')) return
  const dir = tempDir(t, { prefix: 'lading-interop-' })
  const src = await RawLayout.create()
  t.after(() => src.cleanup())
  await src.addImage({ tag: 't', layers: 2 })
  assertValid(src.dir)
  const oci = path.join(dir, 'oci')
  const docker = path.join(dir, 'docker')
  ok('skopeo', ['copy', '--quiet', `oci:${src.dir}:t`, `oci:${oci}:t`])
  assertValid(oci)
  ok('skopeo', ['copy', '--quiet', '--format', 'v2s2', `oci:${src.dir}:t`, `oci:${docker}:t`])
  const idx = JSON.parse(await fsp.readFile(path.join(docker, 'index.json'), 'utf8'))
  assert.equal(idx.manifests[0].mediaType, 'application/vnd.docker.distribution.manifest.v2+json', 'Docker media types inside an OCI layout')
  assertValid(docker)
  const v = ladingValidate(['--image', `${docker}:t`, '--json'])
  assert.equal(v.status, 0, v.stdout)
  assert.equal(JSON.parse(v.stdout).checked.blobs, 4)
})

test('interop: skopeo copies umoci-built images too', async (t) => {
  if (!requireTool(t, 'umoci') || !requireTool(t, 'skopeo')) return
  const dir = tempDir(t, { prefix: 'lading-interop-' })
  const [layout, bundle] = buildWithUmoci(dir).split('\0') as [string, string]
  await fsp.writeFile(path.join(bundle, 'rootfs', 'file'), 'x')
  ok('umoci', ['repack', '--image', `${layout}:r`, bundle])
  const out = path.join(dir, 'copy')
  ok('skopeo', ['copy', '--quiet', `oci:${layout}:r`, `oci:${out}:r`])
  assertValid(out)
})

function ociImageTool(type: 'imageIndex' | 'manifest' | 'config', file: string): void {
  const r = run('oci-image-tool', ['validate', '--type', type, file])
  assert.equal(r.status, 0, `oci-image-tool validate --type ${type} ${file}: ${r.stdout}${r.stderr}`)
}

/** Every document reachable in a layout, by type, for oci-image-tool. */
async function documents(dir: string): Promise<Array<{ type: 'imageIndex' | 'manifest' | 'config'; file: string }>> {
  const out: Array<{ type: 'imageIndex' | 'manifest' | 'config'; file: string }> = [{ type: 'imageIndex', file: path.join(dir, 'index.json') }]
  const blob = (d: string) => path.join(dir, 'blobs', 'sha256', d.slice(7))
  const walk = async (descs: any[]): Promise<void> => {
    for (const d of descs) {
      if (d.mediaType === 'application/vnd.oci.image.index.v1+json') {
        out.push({ type: 'imageIndex', file: blob(d.digest) })
        await walk(JSON.parse(await fsp.readFile(blob(d.digest), 'utf8')).manifests)
      } else if (d.mediaType === 'application/vnd.oci.image.manifest.v1+json') {
        out.push({ type: 'manifest', file: blob(d.digest) })
        const m = JSON.parse(await fsp.readFile(blob(d.digest), 'utf8'))
        if (m.config.mediaType === 'application/vnd.oci.image.config.v1+json') out.push({ type: 'config', file: blob(m.config.digest) })
      }
    }
  }
  await walk(JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8')).manifests)
  return out
}

test('interop: documents written by the raw-layout helper pass oci-image-tool and lading validate', async (t) => {
  if (!requireTool(t, 'oci-image-tool')) return
  const l = await RawLayout.create()
  t.after(() => l.cleanup())
  const a = await l.addImage({ tag: 'a', layers: 2 })
  const b = await l.addImage({ layers: 1, architecture: 'arm64', seed: 'arm' })
  const idx = await l.writeJson(
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { ...a.manifestDescriptor, platform: { os: 'linux', architecture: 'amd64' } },
        { ...b.manifestDescriptor, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    },
    'application/vnd.oci.image.index.v1+json',
  )
  await l.addToIndex(idx, 'multi')
  const docs = await documents(l.dir)
  assert.equal(docs.length, 8, 'index.json; manifest+config of a; the nested index; a again and b, each with config')
  for (const d of docs) ociImageTool(d.type, d.file)
  assertValid(l.dir)
})

test('interop: images committed by store/image.ts writeImage pass oci-image-tool and lading validate', async (t) => {
  if (!requireTool(t, 'oci-image-tool')) return
  const { Layout } = await import('../../src/store/layout.js')
  const { writeImage } = await import('../../src/store/image.js')
  const dir = tempDir(t, { prefix: 'lading-interop-' })
  const layout = await Layout.init(path.join(dir, 'l'))
  const { makeTar, sha256 } = await import('../helpers/raw-layout.js')
  const { gzipSync } = await import('node:zlib')
  const tar = makeTar({ 'a.txt': 'a\n' })
  const gz = gzipSync(tar)
  const put = await layout.putBlob(gz)
  await writeImage(layout, {
    tag: 'w',
    config: {
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      rootfs: { type: 'layers', diff_ids: [sha256(tar) as any] },
      history: [{ created_by: 'test' }],
      config: { Env: ['A=1'] },
    },
    manifest: {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put.digest, size: 0 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: put.digest, size: put.size }],
    },
  })
  for (const d of await documents(layout.dir)) ociImageTool(d.type, d.file)
  assertValid(layout.dir)
})

test('interop: the Debian fixture layout (umoci-built, three tags) passes lading validate', async (t) => {
  const layout = path.join(process.env.LADING_FIXTURES ?? '/var/tmp/lading-fixtures', 'layout')
  if (!existsSync(path.join(layout, 'index.json'))) {
    t.skip(`fixtures not built (${layout}); run scripts/fixtures.sh`)
    return
  }
  const r = await validateLayout(layout)
  assert.deepEqual(r.problems, [])
  assert.ok(r.checked.bytes > 50_000_000, `hashed ${r.checked.bytes} bytes`)
})

test('interop: a layout written by the lading CLI (init, new, config, insert) passes lading validate --deep and oci-image-tool', async (t) => {
  if (!requireTool(t, 'oci-image-tool')) return
  const dir = tempDir(t, { prefix: 'lading-interop-' })
  const layout = path.join(dir, 'l')
  const lading = (args: string[]) => ok(process.execPath, [cli, ...args])
  lading(['init', '--layout', layout])
  lading(['new', '--image', `${layout}:t`])
  lading(['config', '--image', `${layout}:t`, '--config.cmd', '/bin/sh', '--config.env', 'A=1', '--config.exposedports', '8080/tcp'])
  await fsp.writeFile(path.join(dir, 'hello'), 'hello\n')
  lading(['insert', '--image', `${layout}:t`, path.join(dir, 'hello'), '/etc/hello'])
  const r = ladingValidate(['--layout', layout, '--deep'])
  assert.equal(r.status, 0, r.stdout + r.stderr)
  const docs = await documents(layout)
  assert.deepEqual(
    docs.map((d) => d.type),
    ['imageIndex', 'manifest', 'config'],
  )
  for (const d of docs) ociImageTool(d.type, d.file)
})
