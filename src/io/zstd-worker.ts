/**
 * zstd decoding on a worker thread, so that on Node 20 (no zstd in node:zlib) decoding overlaps
 * with the main thread's tar parsing and file writing the way gunzip on libuv's pool does.
 * The main thread only gathers input into 1 MiB pieces and receives 1 MiB output pieces whose
 * ArrayBuffers are transferred, not copied.
 *
 * Flow control (see zstd-worker-thread.ts): one input chunk in flight, and output only as the
 * reader asks for it, so memory stays bounded whatever the compression ratio.
 */
import { Duplex } from 'node:stream'
import { Worker } from 'node:worker_threads'
import type { FromWorker, ToWorker } from './zstd-worker-thread.js'

/** Output chunks (up to 1 MiB each) the worker may send ahead of the reader. */
const CREDIT = 4
/** Input is handed over in pieces of at least this size (blob streams come in 64 KiB chunks). */
const IN_CHUNK = 1024 * 1024

const WORKER_URL = new URL('./zstd-worker-thread.js', import.meta.url)

/**
 * One finished worker is kept (unref'd, so it never holds the process open) for the next zstd
 * stream: starting a worker and loading zstd-napi costs ~40 ms, paid once per image, not per layer.
 */
let idle: Worker | undefined
const onIdleGone = (): void => {
  if (idle) {
    idle.off('error', onIdleGone)
    idle.off('exit', onIdleGone)
  }
  idle = undefined
}
function takeWorker(): Worker {
  const w = idle
  if (w) {
    onIdleGone()
    w.ref()
    return w
  }
  return new Worker(WORKER_URL)
}
/** After a clean end: reset the worker and keep it, or end it if one is already kept. */
function parkWorker(w: Worker): void {
  if (idle !== undefined) {
    void w.terminate()
    return
  }
  w.postMessage({ t: 'reset' } satisfies ToWorker)
  // Only our own listeners are touched: Worker keeps internal ones (port referencing) that
  // removeAllListeners() would break.
  w.on('error', onIdleGone)
  w.on('exit', onIdleGone)
  w.unref()
  idle = w
}

export class ZstdWorkerDecoder extends Duplex {
  readonly #worker: Worker
  #outstanding = 0
  #writeCb: ((e?: Error | null) => void) | undefined
  #finalCb: ((e?: Error | null) => void) | undefined
  #closed = false

  constructor() {
    super({ readableHighWaterMark: 1024 * 1024, writableHighWaterMark: 1024 * 1024 })
    this.#worker = takeWorker()
    this.#worker.on('message', this.#onMessageBound)
    this.#worker.on('error', this.#onErrorBound)
    this.#worker.on('exit', this.#onExitBound)
  }

  readonly #onMessageBound = (m: FromWorker): void => this.#onMessage(m)
  readonly #onErrorBound = (e: Error): void => {
    this.destroy(e)
  }
  readonly #onExitBound = (code: number): void => {
    if (!this.#closed) this.destroy(new Error(`zstd worker exited unexpectedly (code ${code})`))
  }

  #detach(): void {
    this.#worker.off('message', this.#onMessageBound)
    this.#worker.off('error', this.#onErrorBound)
    this.#worker.off('exit', this.#onExitBound)
  }

  #send(m: ToWorker, transfer?: ArrayBuffer[]): void {
    this.#worker.postMessage(m, transfer ?? [])
  }

  #grant(): void {
    if (this.#outstanding < CREDIT) {
      const n = CREDIT - this.#outstanding
      this.#outstanding = CREDIT
      this.#send({ t: 'credit', n })
    }
  }

  #onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'out': {
        this.#outstanding--
        if (this.push(Buffer.from(m.buf, m.off, m.len))) this.#grant()
        break
      }
      case 'consumed': {
        const cb = this.#writeCb
        this.#writeCb = undefined
        cb?.()
        break
      }
      case 'done': {
        // A clean end: the worker is reusable.
        this.#closed = true
        this.#detach()
        parkWorker(this.#worker)
        this.push(null)
        const cb = this.#finalCb
        this.#finalCb = undefined
        cb?.()
        break
      }
      case 'error':
        this.destroy(new Error(m.message))
        break
    }
  }

  #pending: Buffer[] = []
  #pendingBytes = 0

  /** Hand the gathered input to the worker; `cb` runs once the worker has consumed it. */
  #sendPending(cb: (e?: Error | null) => void): void {
    // Copied into memory we own, so it can be transferred (the sources' memory may be pooled).
    const own = new ArrayBuffer(this.#pendingBytes)
    const view = new Uint8Array(own)
    let off = 0
    for (const b of this.#pending) {
      view.set(b, off)
      off += b.length
    }
    this.#pending = []
    this.#pendingBytes = 0
    this.#writeCb = cb
    this.#send({ t: 'in', buf: own, off: 0, len: own.byteLength }, [own])
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#pending.push(chunk)
    this.#pendingBytes += chunk.length
    if (this.#pendingBytes < IN_CHUNK) cb()
    else this.#sendPending(cb)
  }

  override _final(cb: (e?: Error | null) => void): void {
    const end = (e?: Error | null): void => {
      if (e) {
        cb(e)
        return
      }
      this.#finalCb = cb
      this.#send({ t: 'end' })
    }
    if (this.#pendingBytes > 0) this.#sendPending(end)
    else end()
  }

  override _read(): void {
    this.#grant()
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.#shutdown()
    cb(err)
  }

  #shutdown(): void {
    if (this.#closed) return
    this.#closed = true
    void this.#worker.terminate()
  }
}
