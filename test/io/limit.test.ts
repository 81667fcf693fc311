/** The one concurrency limiter (src/io/limit.ts), used by the copy engine and the layout validator. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Limiter } from '../../src/io/limit.js'

test('limiter: at most n at once, and n used, while running tasks add more (as the validator walk does)', async () => {
  for (const n of [1, 2, 3]) {
    const limiter = new Limiter(n, { stopAfterFailure: false })
    let running = 0
    let most = 0
    const all: Promise<void>[] = []
    const task = (depth: number) => async (): Promise<void> => {
      running++
      most = Math.max(most, running)
      await sleep(depth % 3)
      running--
      // A task that adds work as it finishes, as the validator's walk does.
      if (depth < 4) for (let i = 0; i < 2; i++) all.push(limiter.run(task(depth + 1)))
    }
    for (let i = 0; i < 5; i++) all.push(limiter.run(task(0)))
    for (let i = 0; i < all.length; i++) await all[i]
    assert.equal(all.length, 5 * (1 + 2 + 4 + 8 + 16))
    assert.equal(most, n, `at most ${n} at once, and the limit is used`)
  }
})

test('limiter: after a failure, tasks not yet started reject with the first error (the copy stops quickly)', async () => {
  const limiter = new Limiter(1)
  const started: number[] = []
  const results = await Promise.allSettled(
    [0, 1, 2].map((i) =>
      limiter.run(async () => {
        started.push(i)
        if (i === 0) throw new Error('first')
        return i
      }),
    ),
  )
  assert.deepEqual(started, [0])
  assert.deepEqual(
    results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : r.value)),
    ['first', 'first', 'first'],
  )
})

test('limiter: stopAfterFailure false runs every task (the validator collects every problem)', async () => {
  const limiter = new Limiter(2, { stopAfterFailure: false })
  const results = await Promise.allSettled(
    [0, 1, 2, 3].map((i) =>
      limiter.run(async () => {
        if (i === 0) throw new Error('first')
        return i
      }),
    ),
  )
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
  )
  assert.throws(() => new Limiter(0), RangeError)
})
