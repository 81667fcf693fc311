/**
 * The transport contract (src/transport/types.ts, DESIGN.md §Interfaces), one suite every
 * transport runs: `transportContract(name, factory)` registers node:test cases. The factory
 * makes a fresh reference (a new directory, file or repository) and a `root` where the
 * transport keeps its bytes, so that a stored blob can be corrupted behind its back.
 *
 * Cases: a put with a wrong digest leaves nothing visible; a flipped byte in a stored blob
 * errors before the stream ends; close is idempotent (sources and destinations, committed or
 * not); manifest bytes round-trip (exactly, where the transport keeps manifests; docker-archive
 * keeps none, so there the config and layers it names must round-trip).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { digestOf } from '../../src/digest/digest.js'
import { isLadingError } from '../../src/errors.js'
import { MediaType } from '../../src/spec/media-types.js'
import { manifestMediaType, parseManifest } from '../../src/spec/parse.js'
import type { Descriptor, RawManifest } from '../../src/spec/types.js'
import { openDestination, openSource, transportOf } from '../../src/transport/open.js'
import type { ImageReference } from '../../src/transport/types.js'
import type { TransportOptions } from '../../src/transport/open.js'
import { drainStream, withFresh } from '../store/contract/with-fresh.js'
import { tarOf } from '../fixtures/image.js'
import type { AfterHook } from '../fixtures/temp.js'

export interface TransportUnderTest {
  ref: ImageReference
  /** Where the transport keeps what it stores (a directory, or the directory of an archive file). */
  root: string
  /** How to open it (a test registry speaks plain HTTP: tlsVerify false). */
  opts?: TransportOptions
  /** What the test context's after hook does not undo (a temp dir is removed by it). */
  cleanup?(): Promise<void>
}

/** Flip a byte inside the (unique, random) `needle` wherever the transport stored it under `root`. */
async function corruptStored(root: string, needle: Buffer): Promise<string> {
  const files: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) await walk(p)
      else if (e.isFile()) files.push(p)
    }
  }
  await walk(root)
  for (const f of files) {
    const bytes = await fsp.readFile(f)
    const at = bytes.indexOf(needle)
    if (at < 0) continue
    bytes[at + (needle.length >> 1)]! ^= 0xff
    await fsp.writeFile(f, bytes)
    return f
  }
  throw new Error(`the stored bytes were not found under ${root}`)
}

interface Written {
  manifest: RawManifest
  config: Descriptor
  layer: Descriptor
  content: Buffer
}

/** Store a one-layer image (uncompressed layer, so every transport keeps its bytes as they are) and commit. */
async function writeImage(ref: ImageReference, opts: TransportOptions = {}): Promise<Written> {
  const dest = await openDestination(ref, opts)
  try {
    const docker = dest.capabilities.manifestTypes[0] === MediaType.DockerManifest
    const content = randomBytes(20_000)
    const tar = tarOf([{ name: 'payload', body: content }])
    const layerType = docker ? MediaType.DockerLayer : MediaType.OciLayer
    const layer = await dest.putBlob(Readable.from([tar]), { digest: digestOf(tar), size: tar.length, mediaType: layerType })
    const configBytes = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: '2024-01-01T00:00:00Z',
        rootfs: { type: 'layers', diff_ids: [digestOf(tar)] },
        config: { Env: ['A=1'] },
      }),
    )
    const configType = docker ? MediaType.DockerConfig : MediaType.OciConfig
    const config = await dest.putBlob(Readable.from([configBytes]), { digest: digestOf(configBytes), size: configBytes.length, mediaType: configType })
    const mediaType = docker ? MediaType.DockerManifest : MediaType.OciManifest
    // Unusual but valid spacing and key order: only a transport that keeps bytes keeps these.
    const bytes = Buffer.from(
      `{"schemaVersion":2,  "mediaType":"${mediaType}",\n "layers":[{"mediaType":"${layerType}","size":${tar.length},"digest":"${layer.digest}"}],"config":{"mediaType":"${configType}","size":${configBytes.length},"digest":"${config.digest}"}}`,
    )
    const manifest: RawManifest = { bytes, mediaType, digest: digestOf(bytes) }
    await dest.putManifest(manifest, 'v1')
    await dest.commit()
    return {
      manifest,
      config: { mediaType: configType, digest: config.digest, size: configBytes.length },
      layer: { mediaType: layerType, digest: layer.digest, size: tar.length },
      content,
    }
  } finally {
    await dest.close()
  }
}

export function transportContract(name: string, factory: (hook: AfterHook) => Promise<TransportUnderTest>, opts: { skip?: string | false } = {}): void {
  const withRef = withFresh(factory)
  const skip = opts.skip ?? false

  test(
    `${name} transport: a put with a wrong digest leaves nothing visible`,
    { skip },
    withRef(async ({ ref, opts }) => {
      const dest = await openDestination(ref, opts)
      try {
        const bytes = randomBytes(10_000)
        const wrong = digestOf(randomBytes(16))
        await assert.rejects(dest.putBlob(Readable.from([bytes]), { digest: wrong, size: bytes.length, mediaType: MediaType.OciLayer }), (e) =>
          isLadingError(e, 'DIGEST_MISMATCH'),
        )
        assert.equal(await dest.hasBlob({ mediaType: MediaType.OciLayer, digest: wrong, size: bytes.length }), false)
        assert.equal(await dest.hasBlob({ mediaType: MediaType.OciLayer, digest: digestOf(bytes), size: bytes.length }), false)
      } finally {
        await dest.close()
      }
    }),
  )

  test(
    `${name} transport: manifest bytes round-trip`,
    { skip },
    withRef(async ({ ref, opts }) => {
      const w = await writeImage(ref, opts)
      const src = await openSource(ref, opts)
      try {
        const got = await src.getManifest()
        // From the table: opening a destination again would be refused for an archive that exists.
        const keepsManifests = transportOf(ref).capabilities.preservesBlobs
        if (keepsManifests) {
          assert.deepEqual(Buffer.from(got.bytes), w.manifest.bytes)
          assert.equal(got.mediaType, w.manifest.mediaType)
          assert.equal(got.digest, w.manifest.digest)
        } else {
          // docker-archive writes manifest.json, not the manifest: what it names must round-trip.
          const m = parseManifest(got.bytes, 'manifest read back', manifestMediaType(got.bytes, 'manifest read back'))
          assert.equal(m.config.digest, w.config.digest)
          assert.deepEqual(
            m.layers.map((l) => l.digest),
            [w.layer.digest],
          )
        }
        const config = await drainStream(await src.getBlob(w.config))
        assert.equal(config.error, undefined)
        assert.equal(config.ended, true)
      } finally {
        await src.close()
      }
    }),
  )

  test(
    `${name} transport: a flipped byte in a stored blob errors before the stream ends`,
    { skip },
    withRef(async ({ ref, root, opts }) => {
      const w = await writeImage(ref, opts)
      await corruptStored(root, w.content)
      const src = await openSource(ref, opts)
      try {
        let result: { ended: boolean; error?: unknown }
        try {
          result = await drainStream(await src.getBlob(w.layer))
        } catch (error) {
          result = { ended: false, error } // refused before a stream was even handed out: also fine
        }
        assert.ok(isLadingError(result.error, 'DIGEST_MISMATCH'), `expected DIGEST_MISMATCH, got ${String(result.error)}`)
        assert.equal(result.ended, false, "'end' must never be seen for bad bytes")
      } finally {
        await src.close()
      }
    }),
  )

  test(
    `${name} transport: close is idempotent`,
    { skip },
    withRef(async ({ ref, opts }) => {
      const uncommitted = await openDestination(ref, opts)
      await uncommitted.close()
      await uncommitted.close()
      await writeImage(ref, opts) // closes its destination once after commit
      const src = await openSource(ref, opts)
      await src.getManifest()
      await src.close()
      await src.close()
    }),
  )
}
