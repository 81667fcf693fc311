/**
 * The copy matrix in the library: an image is copied from every transport to every other
 * (oci, oci-archive, docker-archive, dir), and what each destination holds is read back
 * through Lading and compared: configs and diff_ids always agree; manifest digests agree
 * wherever neither side is docker-archive (the only transport that changes the format).
 */
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { registryMissing, startRegistry, type RunningRegistry } from '../helpers/registry.js'
import { runOk } from '../helpers/cli.js'
import { findTool } from '../helpers/tools.js'
import { digestOf } from '../../src/digest/digest.js'
import { copyImage } from '../../src/copy/copy.js'
import { openDestination, openSource } from '../../src/transport/open.js'
import { parseReference } from '../../src/transport/reference.js'
import { seeImage } from './inspect.js'
import { initImage, initMultiPlatform, type StoredImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-copy-matrix-' })
let img: StoredImage
let registry: RunningRegistry | undefined
/** The registry runs plain HTTP on 127.0.0.1, as skopeo's --tls-verify=false allows. */
const OPTS = { tlsVerify: false }

async function copy(from: string, to: string, opts: Parameters<typeof copyImage>[2] = {}): Promise<Awaited<ReturnType<typeof copyImage>>> {
  const src = await openSource(parseReference(from), OPTS)
  try {
    const dest = await openDestination(parseReference(to), OPTS)
    try {
      return await copyImage(src, dest, opts)
    } finally {
      await dest.close()
    }
  } finally {
    await src.close()
  }
}

function refFor(transport: string, base: string): string {
  switch (transport) {
    case 'oci':
      return `oci:${base}:t`
    case 'oci-archive':
      return `oci-archive:${base}.tar:t`
    case 'docker-archive':
      return `docker-archive:${base}.tar:example/app:t`
    case 'dir':
      return `dir:${base}`
    case 'docker':
      return `docker://${registry!.host}/matrix/${path.basename(base)}:t`
    default:
      throw new Error(transport)
  }
}

const TRANSPORTS = ['oci', 'oci-archive', 'docker-archive', 'dir']
const missing = registryMissing()

before(async () => {
  img = await initImage(path.join(tmp, 'origin'), {}, 't')
  if (!missing) {
    registry = await startRegistry()
    TRANSPORTS.push('docker')
  }
})
after(async () => {
  await registry?.stop()
})

test('copy matrix: every transport to every transport keeps config and diff_ids', async (t) => {
  if (missing) t.diagnostic(`docker:// left out of the matrix: ${missing}`)
  const origin = await seeImage(`oci:${path.join(tmp, 'origin')}:t`, OPTS)
  assert.equal(origin.manifestDigest, img.manifest.digest)
  // Sources: the origin copied into each transport.
  for (const s of TRANSPORTS) await copy(`oci:${path.join(tmp, 'origin')}:t`, refFor(s, path.join(tmp, `src-${s}`)))
  for (const s of TRANSPORTS) {
    for (const d of TRANSPORTS) {
      const to = refFor(d, path.join(tmp, `dst-${s}-to-${d}`))
      const result = await copy(refFor(s, path.join(tmp, `src-${s}`)), to)
      const seen = await seeImage(to, OPTS)
      const what = `${s} -> ${d}`
      assert.equal(seen.configDigest, origin.configDigest, `${what}: config digest`)
      assert.equal(seen.configBytes, origin.configBytes, `${what}: config bytes`)
      assert.deepEqual(seen.diffIds, origin.diffIds, `${what}: diff_ids`)
      assert.equal(result.digest, seen.manifestDigest, `${what}: reported digest is what the destination holds`)
      if (s !== 'docker-archive' && d !== 'docker-archive') {
        assert.equal(seen.manifestDigest, origin.manifestDigest, `${what}: manifest digest preserved`)
        assert.deepEqual(
          seen.layers.map((l) => l.digest),
          origin.layers.map((l) => l.digest),
          `${what}: layer digests`,
        )
      }
      if (d === 'docker-archive') {
        // docker-archive keeps layers uncompressed: their digests are the diff_ids.
        assert.deepEqual(
          seen.layers.map((l) => l.digest),
          origin.diffIds,
          `${what}: uncompressed layers`,
        )
      }
    }
  }
})

test('copy docker-archive: -> docker:// compresses its uncompressed layers with gzip (as skopeo does); --preserve-digests and --dest-decompress (destCompress none) keep them', async (t) => {
  if (missing) {
    t.skip(missing)
    return
  }
  const origin = await seeImage(`oci:${path.join(tmp, 'origin')}:t`, OPTS)
  const archive = refFor('docker-archive', path.join(tmp, 'gz-src'))
  await copy(`oci:${path.join(tmp, 'origin')}:t`, archive)
  const to = (name: string): string => `docker://${registry!.host}/gz/${name}:t`
  await copy(archive, to('default'))
  const seen = await seeImage(to('default'), OPTS)
  assert.ok(
    seen.layers.every((l) => /\.gzip$/.test(l.mediaType)),
    seen.layers.map((l) => l.mediaType).join(', '),
  )
  assert.deepEqual(seen.diffIds, origin.diffIds)
  for (const [name, opts] of [
    ['kept', { preserveDigests: true }],
    ['none', { destCompress: 'none' as const }],
  ] as const) {
    await copy(archive, to(name), opts)
    const plain = await seeImage(to(name), OPTS)
    assert.ok(
      plain.layers.every((l) => /\.tar$/.test(l.mediaType)),
      `${name}: ${plain.layers.map((l) => l.mediaType).join(', ')}`,
    )
    assert.deepEqual(
      plain.layers.map((l) => l.digest),
      origin.diffIds,
      `${name}: the uncompressed layers as they were`,
    )
  }
})

test('copy: a rerun into the same oci layout sends no blob again', async () => {
  const to = `oci:${path.join(tmp, 'rerun')}:t`
  const first = await copy(`oci:${path.join(tmp, 'origin')}:t`, to)
  assert.equal(first.blobs.copied, 3)
  const events: string[] = []
  const second = await copy(`oci:${path.join(tmp, 'origin')}:t`, to, { onProgress: (e) => events.push(e.type) })
  assert.equal(second.blobs.copied, 0)
  assert.equal(second.blobs.existed, 3)
  assert.ok(events.filter((e) => e === 'blob-exists').length === 3, events.join(','))
  assert.ok(!events.includes('blob-start'))
})

test('copy: several images into one docker-archive (one destination, two copies)', async () => {
  const second = path.join(tmp, 'second')
  await initImage(second, { seed: 'second' }, 't')
  const file = path.join(tmp, 'two-images.tar')
  // Unnamed destination: each copy names its image with full NAME:TAG tags.
  const dest = await openDestination(parseReference(`docker-archive:${file}`))
  try {
    for (const [from, tags] of [
      [`oci:${path.join(tmp, 'origin')}:t`, ['example/first:v1']],
      [`oci:${second}:t`, ['example/second:v2', 'example/second:latest']],
    ] as const) {
      const src = await openSource(parseReference(from))
      try {
        await copyImage(src, dest, { additionalTags: [...tags] })
      } finally {
        await src.close()
      }
    }
  } finally {
    await dest.close()
  }
  const first = await seeImage(`docker-archive:${file}:example/first:v1`)
  const secondSeen = await seeImage(`docker-archive:${file}:example/second:v2`)
  assert.equal(first.configDigest, (await seeImage(`oci:${path.join(tmp, 'origin')}:t`)).configDigest)
  assert.notEqual(secondSeen.configDigest, first.configDigest)
  assert.equal((await seeImage(`docker-archive:${file}:@1`)).configDigest, secondSeen.configDigest)
  assert.equal((await seeImage(`docker-archive:${file}:example/second`)).configDigest, secondSeen.configDigest)
  if (findTool('skopeo')) {
    const cfg = runOk('skopeo', ['inspect', '--config', '--raw', `docker-archive:${file}:example/second:v2`]).stdout
    assert.equal(digestOf(cfg), secondSeen.configDigest, 'skopeo picks the same image by name')
  }
})

test('copy --all of a two-platform index through docker:// keeps every digest', async (t) => {
  if (!registry) {
    t.skip(`no registry: ${missing}`)
    return
  }
  const multi = await initMultiPlatform(path.join(tmp, 'multi'), 't')
  const remote = `docker://${registry.host}/matrix/multi:t`
  const up = await copy(`oci:${path.join(tmp, 'multi')}:t`, remote, { all: true })
  assert.equal(up.digest, multi.index.digest)
  assert.equal(up.images.length, 2)
  const down = await copy(remote, `oci:${path.join(tmp, 'multi-back')}:t`, { all: true })
  assert.equal(down.digest, multi.index.digest)
  // One platform pulled from the registry's index is that platform's image.
  const one = await copy(remote, `oci:${path.join(tmp, 'multi-arm')}:t`, { platforms: [{ os: 'linux', architecture: 'arm64' }] })
  assert.equal(one.digest, multi.images[1]!.manifest.digest)
})

test('copy --referrers through docker:// (referrers API or its fallback tag)', async (t) => {
  if (!registry) {
    t.skip(`no registry: ${missing}`)
    return
  }
  const { putReferrer } = await import('../fixtures/image.js')
  const { Layout } = await import('../../src/store/layout.js')
  const dir = path.join(tmp, 'with-ref')
  await initImage(dir, { seed: 'ref' }, 't')
  const layout = await Layout.open(dir)
  const sbom = await putReferrer(layout, await layout.resolveTag('t'))
  const remote = `docker://${registry.host}/matrix/with-ref:t`
  const up = await copy(`oci:${dir}:t`, remote, { referrers: true })
  assert.equal(up.referrers, 1)
  const back = path.join(tmp, 'with-ref-back')
  const down = await copy(remote, `oci:${back}:t`, { referrers: true })
  assert.equal(down.referrers, 1)
  assert.ok(await (await Layout.open(back)).hasBlob(sbom.digest), 'the referrer came back')
})

test('copy between two repositories of one registry mounts blobs instead of sending them', async (t) => {
  if (!registry) {
    t.skip(`no registry: ${missing}`)
    return
  }
  const a = `docker://${registry.host}/mount/a:t`
  await copy(`oci:${path.join(tmp, 'origin')}:t`, a)
  const events: string[] = []
  const r = await copy(a, `docker://${registry.host}/mount/b:t`, {
    onProgress: (e) => {
      if (e.type === 'blob-skipped') events.push(e.reason)
    },
  })
  assert.equal(r.blobs.copied, 0)
  assert.deepEqual(events, ['mounted from mount/a', 'mounted from mount/a', 'mounted from mount/a'])
  assert.equal(r.digest, img.manifest.digest)
})

test('copy from a faulty registry: resets, 500 and 429 are retried; a flipped byte fails naming the blob, nothing stored', async (t) => {
  if (!registry) {
    t.skip(`no registry: ${missing}`)
    return
  }
  const { startFaultProxy } = await import('../helpers/fault-proxy.js')
  const { isLadingError } = await import('../../src/errors.js')
  await copy(`oci:${path.join(tmp, 'origin')}:t`, `docker://${registry.host}/faulty/img:t`)
  const proxy = await startFaultProxy(registry.url)
  try {
    const layer = img.layers[1]!.digest
    proxy.addFault({ method: 'GET', path: /\/blobs\//, fault: { kind: 'reset' } })
    proxy.addFault({ method: 'GET', path: /\/manifests\//, fault: { kind: 'status', status: 500 } })
    proxy.addFault({ method: 'GET', path: new RegExp(layer), fault: { kind: 'status', status: 429, headers: { 'retry-after': '0' } } })
    const ok = await copy(`docker://${proxy.host}/faulty/img:t`, `oci:${path.join(tmp, 'faulty-ok')}:t`)
    assert.equal(ok.digest, img.manifest.digest)
    assert.equal(proxy.pending(), 0, 'every fault fired and was retried')

    proxy.addFault({ method: 'GET', path: new RegExp(layer), fault: { kind: 'flip-byte', offset: 10 } })
    const dst = path.join(tmp, 'faulty-bad')
    await assert.rejects(copy(`docker://${proxy.host}/faulty/img:t`, `oci:${dst}:t`), (e: unknown) => {
      assert.ok(isLadingError(e, 'DIGEST_MISMATCH'), String(e))
      assert.match((e as Error).message, new RegExp(layer))
      return true
    })
    // Nothing stored: the layout this failed copy created is removed again.
    await assert.rejects(fsp.lstat(dst), { code: 'ENOENT' }, 'no partial blob')
  } finally {
    await proxy.stop()
  }
})
