/** Helpers the contract suites (store and transport) share. */
import type { Readable } from 'node:stream'

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

/** Read a stream to its end; reports whether 'end' was seen before an error (a verifying stream must error first). */
export async function drainStream(s: Readable): Promise<{ bytes: Buffer; ended: boolean; error?: unknown }> {
  const chunks: Buffer[] = []
  let ended = false
  s.on('end', () => {
    ended = true
  })
  try {
    for await (const c of s) chunks.push(c as Buffer)
    return { bytes: Buffer.concat(chunks), ended }
  } catch (error) {
    return { bytes: Buffer.concat(chunks), ended, error }
  }
}
