/**
 * Worker side of ZstdWorkerDecoder (zstd-worker.ts): decodes zstd off the main thread with
 * zstd-napi's streaming DCtx, under flow control in both directions:
 *  - one input chunk at a time: 'consumed' tells the main thread to send the next;
 *  - output only against credit: each 'out' message spends one credit, and the worker stops
 *    (keeping its place) at zero until the main thread's reader grants more. So a frame that
 *    expands enormously (a decompression bomb) is produced only as fast as it is consumed.
 * zstd's default decoder window limit (2^27) bounds the decoder's own memory.
 */
import { createRequire } from 'node:module'
import { parentPort } from 'node:worker_threads'

interface StreamResult extends Array<number> { 0: number; 1: number; 2: number }
interface Binding {
  DCtx: new () => { decompressStream(dst: Uint8Array, src: Uint8Array): StreamResult }
}

export type ToWorker =
  | { t: 'in'; buf: ArrayBuffer; off: number; len: number }
  | { t: 'end' }
  | { t: 'credit'; n: number }
  /** Forget the previous stream entirely; the next messages start a new one. */
  | { t: 'reset' }
export type FromWorker =
  | { t: 'out'; buf: ArrayBuffer; off: number; len: number }
  | { t: 'consumed' }
  | { t: 'done' }
  | { t: 'error'; message: string }

/** Output is sent in pieces of this size (fewer, larger messages: each costs the main thread). */
const OUT_CHUNK = 1024 * 1024

const port = parentPort
if (port) {
  let dctx: InstanceType<Binding['DCtx']> | undefined
  let credit = 0
  let src: Buffer | undefined
  let dst: Buffer | undefined
  let filled = 0
  let inFrame = false
  let ending = false
  let failed = false
  const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer ?? [])
  const fail = (e: unknown): void => {
    failed = true
    post({ t: 'error', message: e instanceof Error ? e.message : String(e) })
  }
  /** Send the filled part of the output buffer (it owns its ArrayBuffer, so it is transferred). */
  const flush = (): void => {
    if (!dst || filled === 0) return
    credit--
    const ab = dst.buffer as ArrayBuffer
    post({ t: 'out', buf: ab, off: dst.byteOffset, len: filled }, [ab])
    dst = undefined
    filled = 0
  }
  /** Decode as far as credit allows; report 'consumed' once the current chunk is used up. */
  const pump = (): void => {
    if (failed) return
    try {
      while (src !== undefined && credit > 0) {
        dst ??= Buffer.allocUnsafe(OUT_CHUNK)
        const room = OUT_CHUNK - filled
        const [ret, produced, consumed] = dctx!.decompressStream(dst.subarray(filled, OUT_CHUNK), src)
        filled += produced
        src = src.subarray(consumed)
        if (filled === OUT_CHUNK) flush()
        if (src.length === 0 && (produced < room || ret === 0)) {
          inFrame = ret !== 0
          src = undefined
          post({ t: 'consumed' })
        }
      }
      if (src === undefined && ending && credit > 0) {
        ending = false
        if (inFrame) {
          fail(new Error('stream ended in the middle of a zstd frame (truncated)'))
          return
        }
        flush()
        post({ t: 'done' })
      }
    } catch (e) {
      fail(e)
    }
  }
  port.on('message', (m: ToWorker) => {
    if (failed) return
    if (m.t === 'reset') {
      dctx = undefined
      credit = 0
      src = undefined
      dst = undefined
      filled = 0
      inFrame = false
      ending = false
      return
    }
    try {
      dctx ??= new (createRequire(import.meta.url)('zstd-napi/binding') as Binding).DCtx()
    } catch (e) {
      fail(e)
      return
    }
    switch (m.t) {
      case 'in':
        src = Buffer.from(m.buf, m.off, m.len)
        break
      case 'end':
        ending = true
        break
      case 'credit':
        credit += m.n
        break
    }
    pump()
  })
}
