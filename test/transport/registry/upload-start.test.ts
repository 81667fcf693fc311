/**
 * A streamed blob upload (one PATCH) reads its source only once the registry has opened the
 * session: reading and hashing ahead would only delay handling the POST's answer. The source is
 * left unread meanwhile, so a source that fails in that window must still fail the upload with
 * its own error (never an uncaught stream error), and the session must be cancelled.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import http from 'node:http'
import { Readable } from 'node:stream'
import type { Digest } from '../../../src/digest/index.js'
import { uploadBlob } from '../../../src/transport/registry/blob-upload.js'
import { RegistryConnection } from '../../../src/transport/registry/connection.js'
import { listenOnLoopback } from '../../helpers/loopback.js'

const SIZE = 9 * 1024 * 1024 // over the 8 MiB that go in one PUT: streamed in one PATCH
const POST_DELAY_MS = 150

interface Seen {
  method: string
  url: string
  at: number
}

/** A registry that answers the POST late and records every request. */
async function slowPostRegistry(seen: Seen[], answeredPost: { at?: number }) {
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, at: Date.now() })
    req.resume()
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/v2/') {
        res.end('{}')
        return
      }
      if (req.method === 'POST') {
        setTimeout(() => {
          answeredPost.at = Date.now()
          res.writeHead(202, { location: '/v2/r/blobs/uploads/s1' }).end()
        }, POST_DELAY_MS)
        return
      }
      if (req.method === 'PATCH') {
        res.writeHead(202, { location: '/v2/r/blobs/uploads/s1' }).end()
        return
      }
      if (req.method === 'PUT') {
        res.writeHead(201).end()
        return
      }
      if (req.method === 'DELETE') {
        res.writeHead(204).end()
        return
      }
      res.writeHead(404).end()
    })
  })
  return listenOnLoopback(server)
}

test('a streamed upload starts reading its source only once the POST has been answered', async () => {
  const seen: Seen[] = []
  const answeredPost: { at?: number } = {}
  const listening = await slowPostRegistry(seen, answeredPost)
  const conn = new RegistryConnection({ registry: listening.host, tlsVerify: false })
  try {
    const data = Buffer.alloc(SIZE, 7)
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest
    let firstRead: number | undefined
    let offset = 0
    const body = new Readable({
      read() {
        firstRead ??= Date.now()
        this.push(offset < data.length ? data.subarray(offset, (offset += 1024 * 1024)) : null)
      },
    })
    const result = await uploadBlob(conn, 'r', body, { digest, size: SIZE })
    assert.equal(result.digest, digest)
    assert.deepEqual(
      seen.map((s) => s.method),
      ['GET', 'POST', 'PATCH', 'PUT'],
    )
    assert.ok(firstRead !== undefined && answeredPost.at !== undefined)
    assert.ok(firstRead >= answeredPost.at, `the source was read ${answeredPost.at - firstRead} ms before the POST was answered`)
  } finally {
    await conn.close()
    await listening.stop()
  }
})

test('a source that fails while the POST is in flight fails the upload with its own error and cancels the session', async () => {
  const seen: Seen[] = []
  const listening = await slowPostRegistry(seen, {})
  const conn = new RegistryConnection({ registry: listening.host, tlsVerify: false })
  try {
    // Fails on its own (as a download that breaks off would), without being read.
    const body = new Readable({ read() {} })
    setTimeout(() => body.destroy(new Error('source broke off')), 20)
    await assert.rejects(uploadBlob(conn, 'r', body, { digest: `sha256:${'a'.repeat(64)}` as Digest, size: SIZE }), /source broke off/)
    assert.deepEqual(
      seen.map((s) => s.method),
      ['GET', 'POST', 'DELETE'],
      'no PATCH, and the session is cancelled',
    )
  } finally {
    await conn.close()
    await listening.stop()
  }
})
