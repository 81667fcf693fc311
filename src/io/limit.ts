/**
 * The one concurrency limiter: at most `n` tasks run at once; the others wait in order. A
 * finishing task hands its slot straight to the next waiter, so the bound holds even when new
 * tasks arrive while one finishes.
 *
 * By default, after a task fails, tasks that have not started yet are not started (they reject
 * with the first error), so a failed copy stops quickly instead of sending every other blob
 * first. `{ stopAfterFailure: false }` runs every task regardless (a validator that collects
 * every problem).
 */
export class Limiter {
  readonly #max: number
  readonly #stopAfterFailure: boolean
  #running = 0
  readonly #waiting: Array<() => void> = []
  #failed: unknown

  constructor(max: number, opts: { stopAfterFailure?: boolean } = {}) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`concurrency must be a positive integer, got ${max}`)
    this.#max = max
    this.#stopAfterFailure = opts.stopAfterFailure ?? true
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running < this.#max) this.#running++
    else await new Promise<void>((resolve) => this.#waiting.push(resolve)) // the slot is handed over by #release
    try {
      if (this.#failed !== undefined) throw this.#failed
      return await task()
    } catch (e) {
      if (this.#stopAfterFailure) this.#failed ??= e
      throw e
    } finally {
      this.#release()
    }
  }

  #release(): void {
    const next = this.#waiting.shift()
    if (next) next()
    else this.#running--
  }
}
