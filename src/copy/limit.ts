/**
 * A bounded work queue: at most `n` tasks run at once. After a task fails, tasks that have not
 * started yet are not started (they reject with the first error), so a failed copy stops
 * quickly instead of sending every other blob first.
 */
export class Limiter {
  readonly #max: number
  #running = 0
  readonly #waiting: Array<() => void> = []
  #failed: unknown

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`concurrency must be a positive integer, got ${max}`)
    this.#max = max
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running < this.#max) this.#running++
    else await new Promise<void>((resolve) => this.#waiting.push(resolve)) // the slot is handed over by #release
    try {
      if (this.#failed !== undefined) throw this.#failed
      return await task()
    } catch (e) {
      this.#failed ??= e
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
