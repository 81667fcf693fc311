/**
 * A blob read from a layout goes out over HTTP in blocks of the block pool (src/io/block-pool.ts),
 * and http.ts hands each block back once the socket has written it. The bytes that arrive must be
 * exactly the file's (a block reused too early would corrupt them), and a 24 MiB body must cycle
 * through a few blocks, not allocate 24.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { PooledFileReader, poolStats } from '../../../src/io/block-pool.js'
import { HttpPool } from '../../../src/transport/registry/http.js'
import { listenOnLoopback } from '../../helpers/loopback.js'
import { tempDir } from '../../fixtures/temp.js'

test('an upload read with PooledFileReader arrives intact and reuses a few pool blocks', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-pooled-' })
  const received: { digest: string; bytes: number }[] = []
  // A slow reader: the socket applies backpressure, so blocks wait in the socket before they return.
  const server = http.createServer((req, res) => {
    const h = createHash('sha256')
    let bytes = 0
    req.on('data', (c: Buffer) => {
      h.update(c)
      bytes += c.length
      req.pause()
      setTimeout(() => req.resume(), 1)
    })
    req.on('end', () => {
      received.push({ digest: h.digest('hex'), bytes })
      res.end('ok')
    })
  })
  const listening = await listenOnLoopback(server)
  const pool = new HttpPool({ tls: { rejectUnauthorized: true }, maxConnections: 2, timeoutMs: 10_000 })
  try {
    const file = path.join(dir, 'blob')
    // 24 MiB plus a partial block: random, so any reused-too-early block changes the digest.
    const data = randomBytes(24 * 1024 * 1024 + 12345)
    await fsp.writeFile(file, data)
    const before = poolStats().made
    for (let i = 0; i < 2; i++) {
      const body = new PooledFileReader(await fsp.open(file, 'r'))
      const res = await pool.request('PATCH', `http://${listening.host}/upload`, { 'content-length': String(data.length) }, body)
      assert.equal(res.statusCode, 200)
      res.body.resume()
      await new Promise((r) => res.body.on('end', r))
    }
    const expected = createHash('sha256').update(data).digest('hex')
    assert.deepEqual(received, [
      { digest: expected, bytes: data.length },
      { digest: expected, bytes: data.length },
    ])
    const made = poolStats().made - before
    assert.ok(made <= 8, `${made} blocks made for two 24 MiB uploads`)
  } finally {
    pool.close()
    await listening.stop()
  }
})
