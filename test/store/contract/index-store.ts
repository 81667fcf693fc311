/**
 * The index-store contract (src/store/index-store.ts), one suite every implementation runs:
 * `indexStoreContract(name, factory)` registers node:test cases on a fresh, empty store.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { digestOf } from '../../../src/digest/digest.js'
import { Annotation, MediaType } from '../../../src/spec/media-types.js'
import type { Descriptor, Index } from '../../../src/spec/types.js'
import type { IndexStore } from '../../../src/store/index-store.js'
import { withFresh } from './with-fresh.js'
import type { AfterHook } from '../../fixtures/temp.js'

export interface IndexStoreUnderTest {
  store: IndexStore
  /** What the test context's after hook does not undo (a temp dir is removed by it). */
  cleanup?(): Promise<void>
}

function entry(tag: string): Descriptor {
  return { mediaType: MediaType.OciManifest, digest: digestOf(tag), size: tag.length, annotations: { [Annotation.RefName]: tag } }
}

export function indexStoreContract(name: string, factory: (hook: AfterHook) => Promise<IndexStoreUnderTest>): void {
  const withStore = withFresh(factory)

  test(
    `${name} index store: starts as an empty image index; update returns and stores what it wrote`,
    withStore(async ({ store }) => {
      const empty = await store.read()
      assert.equal(empty.schemaVersion, 2)
      assert.deepEqual(empty.manifests, [])
      const written = await store.update((i) => ({ ...i, manifests: [...i.manifests, entry('a')] }))
      assert.deepEqual(written.manifests, [entry('a')])
      assert.deepEqual((await store.read()).manifests, [entry('a')])
    }),
  )

  test(
    `${name} index store: concurrent updates lose nothing`,
    withStore(async ({ store }) => {
      const tags = Array.from({ length: 12 }, (_, i) => `t${i}`)
      await Promise.all(
        tags.map(async (t) =>
          store.update(async (i) => {
            await new Promise((r) => setImmediate(r)) // widen the window between read and write
            return { ...i, manifests: [...i.manifests, entry(t)] }
          }),
        ),
      )
      const got = (await store.read()).manifests.map((d) => d.annotations?.[Annotation.RefName]).sort()
      assert.deepEqual(got, [...tags].sort())
    }),
  )

  test(
    `${name} index store: update(fn) throwing leaves the index unchanged`,
    withStore(async ({ store }) => {
      await store.update((i) => ({ ...i, manifests: [entry('keep')] }))
      const before = await store.read()
      await assert.rejects(
        store.update(() => {
          throw new Error('changed my mind')
        }),
        /changed my mind/,
      )
      await assert.rejects(
        store.update(async () => {
          throw new Error('async too')
        }),
        /async too/,
      )
      assert.deepEqual(await store.read(), before)
      // And the lock was released: the next update goes through.
      await store.update((i) => ({ ...i, manifests: [...i.manifests, entry('next')] }))
      assert.equal((await store.read()).manifests.length, 2)
    }),
  )

  test(
    `${name} index store: an index that would not parse is never written`,
    withStore(async ({ store }) => {
      const before = await store.read()
      await assert.rejects(store.update(() => ({ schemaVersion: 3, manifests: [] }) as unknown as Index))
      await assert.rejects(
        store.update((i) => ({ ...i, manifests: [{ mediaType: MediaType.OciManifest, digest: 'sha256:nothex', size: 1 }] }) as unknown as Index),
      )
      assert.deepEqual(await store.read(), before)
    }),
  )

  test(
    `${name} index store: a returned index is a copy (changing it changes nothing stored)`,
    withStore(async ({ store }) => {
      const i = await store.read()
      // The type says readonly; a JavaScript caller (or a cast) can still push, and must change nothing stored.
      ;(i.manifests as Descriptor[]).push(entry('sneaky'))
      assert.deepEqual((await store.read()).manifests, [])
    }),
  )

  test(
    `${name} index store: withLock excludes update`,
    withStore(async ({ store }) => {
      const order: string[] = []
      let inside!: () => void
      const entered = new Promise<void>((r) => {
        inside = r
      })
      const held = store.withLock(async () => {
        inside()
        order.push('lock-start')
        await new Promise((r) => setTimeout(r, 50))
        order.push('lock-end')
      })
      await entered
      await store.update((i) => {
        order.push('update')
        return i
      })
      await held
      assert.deepEqual(order, ['lock-start', 'lock-end', 'update'])
    }),
  )
}
