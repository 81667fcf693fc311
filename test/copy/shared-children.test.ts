/**
 * Issue 10 item 3: nested indexes that list the same child many times must not make copy
 * exponential. The hostile layout here has 8 nested indexes, each listing the one below 8 times
 * (8^8 = 16.7 million paths to the one image manifest): the copy planner must visit each digest
 * once, from a layout and from a registry (each manifest and config fetched once).
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Digest } from '../../src/digest/digest.js'
import { copyImage } from '../../src/copy/copy.js'
import { isLadingError } from '../../src/errors.js'
import { MAX_INDEX_DEPTH, VisitBudget } from '../../src/io/limits.js'
import { Layout } from '../../src/store/layout.js'
import { resolveImage } from '../../src/store/resolve.js'
import { validateLayout } from '../../src/store/validate-layout.js'
import { MediaType } from '../../src/spec/media-types.js'
import { hostPlatform } from '../../src/spec/platform.js'
import type { Descriptor } from '../../src/spec/types.js'
import { openDestination, openSource } from '../../src/transport/open.js'
import type { ImageSource } from '../../src/transport/types.js'
import { parseReference } from '../../src/transport/reference.js'
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js'
import { registryMissing, startRegistry, type RunningRegistry } from '../helpers/registry.js'
import { putImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const LEVELS = MAX_INDEX_DEPTH // the image manifest sits at the deepest depth allowed
const WIDTH = 8

const tmp = tempDir({ after }, { prefix: 'lading-shared-children-' })
let hostile: string
/** Every document of the hostile image: the indexes (top last) and the image manifest. */
let docs: Descriptor[]
let configDigest: Digest

/** Index level i lists the level below WIDTH times (all with the host platform). */
async function buildHostile(dir: string): Promise<void> {
  const layout = await Layout.init(dir)
  const img = await putImage(layout, { platform: hostPlatform() })
  configDigest = (JSON.parse((await layout.readBlob(img.manifest)).toString()) as { config: Descriptor }).config.digest
  docs = [img.manifest]
  let child: Descriptor = img.manifest
  for (let i = 0; i < LEVELS; i++) {
    const entry = { mediaType: child.mediaType, digest: child.digest, size: child.size, platform: hostPlatform() }
    const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: Array.from({ length: WIDTH }, () => entry) }
    child = await layout.putManifest(Buffer.from(JSON.stringify(index)), MediaType.OciIndex)
    docs.push(child)
  }
  await layout.setTag('t', child)
}

/** A source that counts getManifest calls per digest (undefined = the reference's own). */
function counting(src: ImageSource, counts: Map<string, number>): ImageSource {
  return new Proxy(src, {
    get(target, prop, receiver) {
      if (prop === 'getManifest') {
        return async (d?: Digest) => {
          const r = await target.getManifest(d)
          counts.set(r.digest, (counts.get(r.digest) ?? 0) + 1)
          return r
        }
      }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

async function copyCounting(from: string, to: string, all: boolean): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  const src = await openSource(parseReference(from), { tlsVerify: false })
  const dest = await openDestination(parseReference(to), { tlsVerify: false })
  try {
    await copyImage(counting(src, counts), dest, all ? { all: true } : {})
  } finally {
    await dest.close()
    await src.close()
  }
  return counts
}

before(async () => {
  hostile = path.join(tmp, 'hostile')
  await buildHostile(hostile)
})

for (const all of [true, false]) {
  test(
    `regression (issue 10 #3): oci: -> oci: ${all ? 'with' : 'without'} --all over indexes repeating their children visits each manifest once`,
    { timeout: 60_000 },
    async () => {
      const out = path.join(tmp, `out-${all}`)
      const counts = await copyCounting(`oci:${hostile}:t`, `oci:${out}:t`, all)
      for (const [digest, n] of counts) assert.equal(n, 1, `${digest} read ${n} times`)
      assert.equal(counts.size, docs.length, 'every document read')
      assert.deepEqual((await validateLayout(out)).problems, [])
      const layout = await Layout.open(out)
      // Without --all the top index is reduced to the host's entry (a new document); the rest is as it was.
      for (const d of all ? docs : docs.slice(0, -1)) assert.ok(await layout.hasBlob(d.digest), d.digest)
    },
  )
}

test(
  'regression (issue 10 #3): resolving a platform (stat, unpack, config) over indexes repeating children without platforms searches each index once',
  { timeout: 60_000 },
  async () => {
    const layout = await Layout.init(path.join(tmp, 'no-platforms'))
    const s390x = { os: 'linux', architecture: 's390x' }
    await putImage(layout, { platform: s390x })
    const img = await putImage(layout, { platform: s390x, seed: 'b' })
    let child: Descriptor = img.manifest
    for (let i = 0; i < LEVELS; i++) {
      const entry = { mediaType: child.mediaType, digest: child.digest, size: child.size }
      const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: Array.from({ length: WIDTH }, () => entry) }
      child = await layout.putManifest(Buffer.from(JSON.stringify(index)), MediaType.OciIndex)
    }
    await layout.setTag('t', child)
    await assert.rejects(
      resolveImage(layout, { tag: 't' }, { os: 'linux', architecture: 'riscv64' }),
      (e: unknown) => isLadingError(e, 'PLATFORM_NOT_FOUND') && e.message.endsWith('available: linux/s390x'),
    )
    assert.equal((await resolveImage(layout, { tag: 't' }, s390x)).manifestDescriptor.digest, img.manifest.digest)
  },
)

test('a walk past MAX_DESCRIPTORS_VISITED stops with one SIZE_LIMIT error', () => {
  const b = new VisitBudget('copy from oci:x', 3)
  b.spend(3)
  assert.throws(
    () => b.spend(),
    (e: unknown) => isLadingError(e, 'SIZE_LIMIT') && /copy from oci:x: more than 3 descriptors/.test(e.message),
  )
})

describe('from a registry', { skip: registryMissing() ?? false }, () => {
  let reg: RunningRegistry
  let proxy: FaultProxy
  before(async () => {
    reg = await startRegistry()
    proxy = await startFaultProxy(reg.url)
    await copyCounting(`oci:${hostile}:t`, `docker://${reg.host}/hostile/nested:t`, true)
  })
  after(async () => {
    await proxy?.stop()
    await reg?.stop()
  })

  for (const all of [true, false]) {
    test(
      `regression (issue 10 #3): docker:// -> oci: ${all ? 'with' : 'without'} --all fetches each manifest and the config once`,
      { timeout: 60_000 },
      async () => {
        proxy.requests.length = 0
        await copyCounting(`docker://${proxy.host}/hostile/nested:t`, `oci:${path.join(tmp, `from-registry-${all}`)}:t`, all)
        const gets = new Map<string, number>()
        for (const r of proxy.requests) {
          if (r.method !== 'GET') continue
          const m = /\/(manifests|blobs)\/([^/?]+)$/.exec(r.path)
          if (m) gets.set(decodeURIComponent(m[2]!), (gets.get(decodeURIComponent(m[2]!)) ?? 0) + 1)
        }
        for (const d of docs.slice(0, -1)) assert.equal(gets.get(d.digest), 1, `manifest ${d.digest} fetched ${gets.get(d.digest) ?? 0} times`)
        // The top index is fetched by tag, once.
        assert.equal(gets.get('t'), 1)
        assert.equal(gets.get(configDigest), 1, 'config fetched once')
      },
    )
  }
})
