/** Helpers the contract suites (store and transport) share. */
import type { Readable } from 'node:stream'
import type { TestContext } from 'node:test'
import type { AfterHook } from '../../fixtures/temp.js'

/**
 * Run a contract case on a fresh implementation from `factory`, cleaned up however the case ends:
 * the factory gets the case's test context, so a temp dir it makes is removed by its after hook;
 * `cleanup` is for what no hook can undo.
 */
export function withFresh<T extends { cleanup?(): Promise<void> }>(factory: (hook: AfterHook) => Promise<T>) {
  return (fn: (u: T) => Promise<void>) => async (t: TestContext) => {
    const u = await factory(t)
    try {
      await fn(u)
    } finally {
      await u.cleanup?.()
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
