/**
 * HEAD requests at a fixed concurrency, for a benchmark of blob HEADs. Debian's wrk (4.1) cannot
 * measure HEAD: its response parser waits for the Content-Length bytes of body that a HEAD answer
 * never has, so every connection stalls (0 requests counted). This generator keeps `connections`
 * keep-alive sockets, each with one request in flight; a HEAD answer is complete at its blank
 * line, so no HTTP parser is needed. Latencies go into 10 µs buckets for the p99. It runs in the
 * benchmark's process and costs both servers the same CPU.
 */
import net from 'node:net'

export interface LoadResult {
  rps: number
  p99Ms: number
  errors: number
}

export async function headLoad(host: string, port: number, path: string, connections: number, seconds: number): Promise<LoadResult> {
  const request = Buffer.from(`HEAD ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`)
  const buckets = new Uint32Array(100_000) // 10 µs each, up to 1 s (the last bucket takes the rest)
  let done = 0
  let errors = 0
  const deadline = Date.now() + seconds * 1000
  const t0 = process.hrtime.bigint()
  await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<void>((resolve) => {
          const s = net.connect(port, host)
          s.setNoDelay(true)
          let sent = 0n
          let pending = ''
          const send = (): void => {
            if (Date.now() >= deadline) {
              s.end()
              return
            }
            sent = process.hrtime.bigint()
            s.write(request)
          }
          s.on('connect', send)
          s.on('data', (b: Buffer) => {
            pending += b.toString('latin1')
            let end: number
            while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
              const head = pending.slice(0, end)
              pending = pending.slice(end + 4)
              if (!head.startsWith('HTTP/1.1 200')) errors++
              const us = Number(process.hrtime.bigint() - sent) / 1000
              buckets[Math.min(buckets.length - 1, Math.floor(us / 10))]!++
              done++
              send()
            }
          })
          s.on('error', () => {
            errors++
            resolve()
          })
          s.on('close', () => resolve())
        }),
    ),
  )
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9
  let seen = 0
  let p99 = 0
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!
    if (seen >= done * 0.99) {
      p99 = (i + 1) * 0.01
      break
    }
  }
  return { rps: done / elapsed, p99Ms: p99, errors }
}
