/**
 * The docker-archive destination writes a layer straight into the temp archive beside FILE (its
 * header once the size is known) instead of spooling it and copying it at commit: checked here
 * by where the bytes go, what happens to a blob that fails verification midway, concurrent
 * blobs (one streams in, the other waits in the spool), a blob listed under two names, several
 * commits into one destination, and the base-256 size of a member of 8 GiB or more.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, test } from 'node:test'
import { digestOf } from '../../src/digest/digest.js'
import { isLadingError } from '../../src/errors.js'
import { MediaType } from '../../src/spec/media-types.js'
import type { Descriptor, RawManifest } from '../../src/spec/types.js'
import { fileHeaderBlock } from '../../src/transport/archive/archive-writer.js'
import { DockerArchiveDestination } from '../../src/transport/docker-archive/destination.js'
import { openSource } from '../../src/transport/open.js'
import { parseReference } from '../../src/transport/reference.js'
import { makeTar } from '../helpers/raw-layout.js'
import { tempDir } from '../fixtures/temp.js'
import { stream } from '../fixtures/image.js'

const tmp = tempDir({ after }, { prefix: 'lading-da-writer-' })

/** A layer (an uncompressed tar over 1 MiB, so it is never held in memory) and a config naming it. */
function image(seed: string, layerCount = 1): { layers: Buffer[]; config: Buffer; manifest(layers: Descriptor[], config: Descriptor): RawManifest } {
  const layers = Array.from({ length: layerCount }, (_, i) => makeTar({ [`data-${seed}-${i}.bin`]: randomBytes(1_500_000) }))
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => digestOf(l)) }, config: { Labels: { seed } } }),
  )
  return {
    layers,
    config,
    manifest(layerDescs, configDesc) {
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: configDesc, layers: layerDescs }))
      return { bytes, mediaType: MediaType.DockerManifest, digest: digestOf(bytes) }
    },
  }
}

const layerDesc = (b: Buffer): Descriptor => ({ mediaType: MediaType.DockerLayer, digest: digestOf(b), size: b.length })
const configDesc = (b: Buffer): Descriptor => ({ mediaType: MediaType.DockerConfig, digest: digestOf(b), size: b.length })

/** Put a one-layer image (layer, config, manifest under `tag`) into `dest`. */
async function putOneLayerImage(dest: DockerArchiveDestination, img: ReturnType<typeof image>, tag: string): Promise<void> {
  await dest.putBlob(stream(img.layers[0]!, 64 * 1024), layerDesc(img.layers[0]!))
  await dest.putBlob(stream(img.config, 64 * 1024), configDesc(img.config))
  await dest.putManifest(img.manifest([layerDesc(img.layers[0]!)], configDesc(img.config)), tag)
}

async function tempArchiveSize(dir: string, base: string): Promise<number | undefined> {
  const tmpName = (await fsp.readdir(dir)).find((n) => n.startsWith(`.${base}.tmp-`))
  return tmpName === undefined ? undefined : (await fsp.stat(path.join(dir, tmpName))).size
}

function members(file: string): string[] {
  const r = spawnSync('tar', ['-tf', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return r.stdout.trim().split('\n')
}

async function layerBytes(ref: string, d: Descriptor): Promise<Buffer> {
  const src = await openSource(parseReference(ref))
  try {
    const out: Buffer[] = []
    for await (const c of await src.getBlob(d)) out.push(c as Buffer)
    return Buffer.concat(out)
  } finally {
    await src.close()
  }
}

test('a layer of unknown size streams into the temp archive beside FILE, not into the spool', async () => {
  const dir = path.join(tmp, 'direct')
  const spoolParent = path.join(tmp, 'direct-tmp')
  await fsp.mkdir(dir)
  await fsp.mkdir(spoolParent)
  const file = path.join(dir, 'out.tar')
  const img = image('direct')
  const dest = await DockerArchiveDestination.open({ transport: 'docker-archive', file, name: 'example/direct', tag: 'v1' }, { tmpDir: spoolParent })
  try {
    const stored = await dest.putBlob(stream(img.layers[0]!, 64 * 1024), { mediaType: MediaType.DockerLayer })
    assert.equal(stored.digest, digestOf(img.layers[0]!))
    const [spool] = await fsp.readdir(spoolParent)
    assert.deepEqual(await fsp.readdir(path.join(spoolParent, spool!)), [], 'nothing was spooled')
    assert.ok((await tempArchiveSize(dir, 'out.tar'))! >= img.layers[0]!.length + 512, 'the layer is in the temp archive already')
    await assert.rejects(fsp.stat(file), 'FILE itself appears only on commit')
    await dest.putBlob(stream(img.config, 64 * 1024), configDesc(img.config))
    await dest.putManifest(img.manifest([layerDesc(img.layers[0]!)], configDesc(img.config)))
    await dest.commit()
  } finally {
    await dest.close()
  }
  assert.equal(await tempArchiveSize(dir, 'out.tar'), undefined, 'no temp archive left')
  assert.deepEqual(await layerBytes(`docker-archive:${file}`, layerDesc(img.layers[0]!)), img.layers[0])
})

test('a blob that fails verification while streaming in is cut off again; the archive stays valid', async () => {
  const file = path.join(tmp, 'cut.tar')
  const img = image('cut')
  const layer = img.layers[0]!
  const dest = await DockerArchiveDestination.open({ transport: 'docker-archive', file, name: 'example/cut', tag: 'v1' }, { tmpDir: tmp })
  try {
    const bad = Buffer.from(layer)
    bad[700_000] = bad[700_000]! ^ 0xff
    await assert.rejects(dest.putBlob(stream(bad, 64 * 1024), layerDesc(layer)), (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH'))
    assert.equal(await tempArchiveSize(tmp, 'cut.tar'), 0, 'the failed member was truncated away')
    assert.equal(await dest.hasBlob(layerDesc(layer)), false)
    await dest.putBlob(stream(layer, 64 * 1024), layerDesc(layer))
    await dest.putBlob(stream(img.config, 64 * 1024), configDesc(img.config))
    await dest.putManifest(img.manifest([layerDesc(layer)], configDesc(img.config)))
    await dest.commit()
  } finally {
    await dest.close()
  }
  const names = members(file)
  assert.equal(names.filter((n) => n === `${digestOf(layer).slice(7)}.tar`).length, 1)
  assert.deepEqual(await layerBytes(`docker-archive:${file}`, layerDesc(layer)), layer)
})

test('two layers at once: one streams into the archive, the other goes through the spool; both arrive', async () => {
  const file = path.join(tmp, 'two.tar')
  const img = image('two', 2)
  const dest = await DockerArchiveDestination.open({ transport: 'docker-archive', file, name: 'example/two', tag: 'v1' }, { tmpDir: tmp })
  try {
    await Promise.all(img.layers.map((l) => dest.putBlob(stream(l, 64 * 1024), layerDesc(l))))
    await dest.putBlob(stream(img.config, 64 * 1024), configDesc(img.config))
    await dest.putManifest(img.manifest(img.layers.map(layerDesc), configDesc(img.config)))
    await dest.commit()
  } finally {
    await dest.close()
  }
  for (const l of img.layers) assert.deepEqual(await layerBytes(`docker-archive:${file}`, layerDesc(l)), l)
})

test('a blob listed both as a layer and as the config is written under both names', async () => {
  const file = path.join(tmp, 'both.tar')
  // A config-shaped document that is also (pretend) a layer: one blob, two member names.
  const blob = Buffer.concat([
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })),
    Buffer.alloc(1_200_000, 0x20),
  ])
  const dest = await DockerArchiveDestination.open({ transport: 'docker-archive', file, name: 'example/both', tag: 'v1' }, { tmpDir: tmp })
  try {
    await dest.putBlob(stream(blob, 64 * 1024), layerDesc(blob))
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: configDesc(blob), layers: [layerDesc(blob)] }))
    await dest.putManifest({ bytes, mediaType: MediaType.DockerManifest, digest: digestOf(bytes) })
    await dest.commit()
  } finally {
    await dest.close()
  }
  const hex = digestOf(blob).slice(7)
  const out = path.join(tmp, 'both-x')
  await fsp.mkdir(out)
  const r = spawnSync('tar', ['-xf', file, '-C', out, `${hex}.json`, `${hex}.tar`], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(await fsp.readFile(path.join(out, `${hex}.json`)), blob)
  assert.deepEqual(await fsp.readFile(path.join(out, `${hex}.tar`)), blob)
})

test('two commits into one destination: the second archive copies (and re-verifies) what the first one holds', async () => {
  const file = path.join(tmp, 'again.tar')
  const a = image('a')
  const b = image('b')
  const dest = await DockerArchiveDestination.open({ transport: 'docker-archive', file }, { tmpDir: tmp })
  try {
    for (const [img, tag] of [
      [a, 'example/a:v1'],
      [b, 'example/b:v1'],
    ] as const) {
      await putOneLayerImage(dest, img, tag)
      await dest.commit()
    }
  } finally {
    await dest.close()
  }
  assert.deepEqual(await layerBytes(`docker-archive:${file}:example/a:v1`, layerDesc(a.layers[0]!)), a.layers[0])
  assert.deepEqual(await layerBytes(`docker-archive:${file}:example/b:v1`, layerDesc(b.layers[0]!)), b.layers[0])
})

test('security: a published archive changed between two commits is not copied into the next one', async () => {
  const file = path.join(tmp, 'tampered.tar')
  const a = image('ta')
  const b = image('tb')
  const dest = await DockerArchiveDestination.open({ transport: 'docker-archive', file }, { tmpDir: tmp })
  try {
    await putOneLayerImage(dest, a, 'example/a:v1')
    await dest.commit()
    // Flip a byte of the first layer inside the published archive (data starts after a 512-byte header).
    const fh = await fsp.open(file, 'r+')
    try {
      const one = Buffer.alloc(1)
      await fh.read(one, 0, 1, 512 + 1000)
      one[0] = one[0]! ^ 0xff
      await fh.write(one, 0, 1, 512 + 1000)
    } finally {
      await fh.close()
    }
    await putOneLayerImage(dest, b, 'example/b:v1')
    await assert.rejects(dest.commit(), (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH'))
  } finally {
    await dest.close()
  }
})

test('a member of 8 GiB or more gets a base-256 size in its one header block (GNU tar reads it)', async () => {
  const size = 9 * 1024 ** 3 + 123
  const h = fileHeaderBlock('big.tar', size)
  assert.equal(h.length, 512)
  assert.equal(h[124], 0x80)
  assert.equal(h.readBigUInt64BE(128), BigInt(size))
  const file = path.join(tmp, 'header-only.tar')
  await fsp.writeFile(file, Buffer.concat([h, Buffer.alloc(512)]))
  const r = spawnSync('tar', ['-tvf', file], { encoding: 'utf8' })
  assert.match(r.stdout, new RegExp(`\\b${size}\\b.*big\\.tar`))
})
