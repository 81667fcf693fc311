/**
 * /metrics in the Prometheus text exposition format (version 0.0.4): requests by route, method
 * and status, a latency histogram per route, bytes in and out, uploads in flight, storage size.
 * Written by hand: the format is a few lines of text, and a client library would be the
 * server's largest dependency.
 */

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

export class Metrics {
  readonly #requests = new Map<string, number>()
  readonly #latency = new Map<string, { buckets: number[]; sum: number; count: number }>()
  bytesIn = 0
  bytesOut = 0
  uploadsInFlight = 0
  gcRuns = 0
  gcBlobsRemoved = 0

  observe(route: string, method: string, status: number, seconds: number): void {
    const key = `route="${label(route)}",method="${label(method)}",status="${status}"`
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1)
    let h = this.#latency.get(route)
    if (!h) {
      h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }
      this.#latency.set(route, h)
    }
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) h.buckets[i]!++
    h.sum += seconds
    h.count++
  }

  /** The exposition text; `storageBytes` and `uploadSessions` are read at scrape time. */
  render(gauges: { storageBytes: number; uploadSessions: number }): string {
    const out: string[] = []
    out.push('# HELP lading_http_requests_total HTTP requests answered, by route, method and status.', '# TYPE lading_http_requests_total counter')
    for (const [k, v] of [...this.#requests].sort()) out.push(`lading_http_requests_total{${k}} ${v}`)
    out.push('# HELP lading_http_request_duration_seconds Time to answer a request, by route.', '# TYPE lading_http_request_duration_seconds histogram')
    for (const [route, h] of [...this.#latency].sort()) {
      const r = label(route)
      BUCKETS.forEach((b, i) => out.push(`lading_http_request_duration_seconds_bucket{route="${r}",le="${b}"} ${h.buckets[i]}`))
      out.push(`lading_http_request_duration_seconds_bucket{route="${r}",le="+Inf"} ${h.count}`)
      out.push(`lading_http_request_duration_seconds_sum{route="${r}"} ${h.sum}`)
      out.push(`lading_http_request_duration_seconds_count{route="${r}"} ${h.count}`)
    }
    out.push(
      '# HELP lading_http_received_bytes_total Bytes received from clients (requests, headers included).',
      '# TYPE lading_http_received_bytes_total counter',
      `lading_http_received_bytes_total ${this.bytesIn}`,
    )
    out.push(
      '# HELP lading_http_sent_bytes_total Response bytes sent.',
      '# TYPE lading_http_sent_bytes_total counter',
      `lading_http_sent_bytes_total ${this.bytesOut}`,
    )
    out.push(
      '# HELP lading_uploads_in_flight Upload requests being received now.',
      '# TYPE lading_uploads_in_flight gauge',
      `lading_uploads_in_flight ${this.uploadsInFlight}`,
    )
    out.push(
      '# HELP lading_upload_sessions Upload sessions open on disk.',
      '# TYPE lading_upload_sessions gauge',
      `lading_upload_sessions ${gauges.uploadSessions}`,
    )
    out.push(
      '# HELP lading_storage_bytes Bytes in the content store (every blob once).',
      '# TYPE lading_storage_bytes gauge',
      `lading_storage_bytes ${gauges.storageBytes}`,
    )
    out.push('# HELP lading_gc_runs_total Online garbage collection rounds.', '# TYPE lading_gc_runs_total counter', `lading_gc_runs_total ${this.gcRuns}`)
    out.push(
      '# HELP lading_gc_removed_blobs_total Blobs removed by garbage collection.',
      '# TYPE lading_gc_removed_blobs_total counter',
      `lading_gc_removed_blobs_total ${this.gcBlobsRemoved}`,
    )
    return out.join('\n') + '\n'
  }
}
