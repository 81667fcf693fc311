/** Run a contract case on a fresh implementation from `factory`, cleaned up however the case ends. */
export function withFresh<T extends { cleanup(): Promise<void> }>(factory: () => Promise<T>) {
  return (fn: (t: T) => Promise<void>) => async () => {
    const t = await factory()
    try {
      await fn(t)
    } finally {
      await t.cleanup()
    }
  }
}
