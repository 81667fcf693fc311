/**
 * When blobs start: layers that move as they are start while the config is still being read (a
 * pull saves a round trip); a recompression needs the config's diff_ids, so there the config is
 * read before any layer is requested. The config is put once the layers' bytes are moving (its
 * requests would otherwise hold up the first layer's on a push).
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, test } from 'node:test'
import { copyImage } from '../../src/copy/copy.js'
import type { Descriptor } from '../../src/spec/types.js'
import { openDestination, openSource } from '../../src/transport/open.js'
import { parseReference } from '../../src/transport/reference.js'
import type { ImageSource } from '../../src/transport/types.js'
import { initImage, type StoredImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-blob-order-' })
let img: StoredImage
before(async () => {
  img = await initImage(path.join(tmp, 'src'), {}, 't')
})

/** The source, recording blob requests; the config's stream is held back until `release()`. */
async function recordingSource(): Promise<{ src: ImageSource; requests: string[]; release: () => void }> {
  const inner = await openSource(parseReference(`oci:${path.join(tmp, 'src')}:t`))
  const requests: string[] = []
  let release!: () => void
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  const configDigest = (JSON.parse((await inner.getManifest()).bytes.toString()) as { config: Descriptor }).config.digest
  const src: ImageSource = {
    ref: inner.ref,
    getManifest: (d) => inner.getManifest(d),
    async getBlob(desc: Descriptor): Promise<Readable> {
      const isConfig = desc.digest === configDigest
      requests.push(isConfig ? 'config' : 'layer')
      if (isConfig) await Promise.race([released, sleep(2000)])
      return inner.getBlob(desc)
    },
    close: () => inner.close(),
    [Symbol.asyncDispose]: () => inner.close(),
  }
  return { src, requests, release }
}

test('layers copied as they are are requested while the config is still being read', async () => {
  const { src, requests, release } = await recordingSource()
  const dest = await openDestination(parseReference(`oci:${path.join(tmp, 'plain')}:t`))
  try {
    const copying = copyImage(src, dest)
    // Let the copy run until the config read blocks; the layers must have been asked for by then.
    for (let i = 0; i < 50 && requests.filter((r) => r === 'layer').length < img.layers.length; i++) await sleep(10)
    assert.equal(requests.filter((r) => r === 'layer').length, img.layers.length, `requests so far: ${requests.join(', ')}`)
    release()
    await copying
  } finally {
    await src.close()
    await dest.close()
  }
})

test('a recompression reads the config (its diff_ids) before it requests any layer', async () => {
  const { src, requests, release } = await recordingSource()
  const dest = await openDestination(parseReference(`oci:${path.join(tmp, 'zstd')}:t`))
  try {
    const copying = copyImage(src, dest, { destCompress: 'zstd' })
    await sleep(100)
    assert.deepEqual(requests, ['config'])
    release()
    await copying
    assert.equal(requests[0], 'config')
  } finally {
    await src.close()
    await dest.close()
  }
})

test("the config is put once the layers' bytes are moving, and at once when every layer is already there", async () => {
  const copyTo = async (dir: string): Promise<string[]> => {
    const order: string[] = []
    const src = await openSource(parseReference(`oci:${path.join(tmp, 'src')}:t`))
    const dest = await openDestination(parseReference(`oci:${dir}:t`))
    const configDigest = (JSON.parse((await src.getManifest()).bytes.toString()) as { config: Descriptor }).config.digest
    try {
      await copyImage(src, dest, {
        onProgress: (e) => {
          if (e.type === 'blob-progress' && e.digest !== configDigest && !order.includes('layer bytes')) order.push('layer bytes')
          if ((e.type === 'blob-start' || e.type === 'blob-exists') && e.digest === configDigest) order.push(`config ${e.type}`)
        },
      })
    } finally {
      await src.close()
      await dest.close()
    }
    return order
  }
  const dir = path.join(tmp, 'order')
  assert.deepEqual(await copyTo(dir), ['layer bytes', 'config blob-start'])
  // Everything is there now: no layer moves a byte, and the config does not wait for one.
  assert.deepEqual(await copyTo(dir), ['config blob-exists'])
})
