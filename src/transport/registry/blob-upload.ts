/**
 * Blob uploads (distribution-spec §Pushing blobs): POST for a session, PATCH chunks with
 * Content-Range (honouring OCI-Chunk-Min-Length, §Pushing a blob in chunks), and the closing
 * `PUT <location>?digest=` carrying the rest. Chunks are Buffers, so every request can be
 * retried; the closing PUT is sent only once the whole stream verified, so a blob that fails
 * verification is never committed, and the session is cancelled on any failure.
 */
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { LadingError } from '../../errors.js'
import { VerifyingStream, type Digest } from '../../digest/index.js'
import { sanitize } from './registry-error.js'
import { drain, header, pushScope, type RegistryConnection } from './connection.js'

export interface UploadResult { digest: Digest; size: number }

/** Per blob at most ~2 chunks are buffered (one in flight, one filling): 8 MiB keeps a copy of 3 blobs at once well under 100 MB. */
export const DEFAULT_CHUNK = 8 * 1024 * 1024
/** The most a registry's OCI-Chunk-Min-Length can make us hold in memory per upload. */
const MAX_CHUNK = 64 * 1024 * 1024

/**
 * Start an upload session (§Pushing a blob monolithically: POST then PUT): the Location and
 * the registry's OCI-Chunk-Min-Length (§Pushing a blob in chunks), if any.
 */
async function startUpload(conn: RegistryConnection, repo: string): Promise<{ location: string; minChunk: number }> {
  const what = `${conn.display(repo)}: POST blob upload`
  const res = await conn.send({
    method: 'POST',
    url: `/v2/${repo}/blobs/uploads/`,
    headers: { 'content-length': '0' },
    scopes: [pushScope(repo)],
    what,
    ok: [202],
  })
  await drain(res)
  const location = header(res.headers, 'location')
  if (!location) throw new LadingError('REGISTRY_ERROR', `${what}: 202 without Location`)
  const min = Number(header(res.headers, 'oci-chunk-min-length') ?? 0)
  return { location: new URL(location, await conn.resolve(`/v2/${repo}/blobs/uploads/`)).toString(), minChunk: Number.isFinite(min) && min > 0 ? min : 0 }
}

export async function cancelUpload(conn: RegistryConnection, repo: string, location: string): Promise<void> {
  try {
    const res = await conn.send({ method: 'DELETE', url: location, scopes: [pushScope(repo)], what: `${conn.display(repo)}: cancel upload`, ok: [200, 202, 204, 404] })
    await drain(res)
  } catch { /* best effort: the registry expires abandoned sessions */ }
}

/**
 * PATCH one chunk (§Pushing a blob in chunks). When a retried PATCH is refused with 416
 * because the first attempt did arrive, the upload status (GET <location>) tells us so.
 */
async function patchChunk(conn: RegistryConnection, repo: string, location: string, chunk: Buffer, offset: number): Promise<string> {
  const what = `${conn.display(repo)}: PATCH blob chunk ${offset}-${offset + chunk.length - 1}`
  const res = await conn.send({
    method: 'PATCH',
    url: location,
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}`, 'content-length': String(chunk.length) },
    body: chunk,
    scopes: [pushScope(repo)],
    what,
    ok: [202, 416],
  })
  await drain(res)
  const next = header(res.headers, 'location')
  if (res.statusCode === 202) {
    if (!next) throw new LadingError('REGISTRY_ERROR', `${what}: 202 without Location`)
    return new URL(next, location).toString()
  }
  const status = await conn.send({ method: 'GET', url: location, scopes: [pushScope(repo)], what: `${conn.display(repo)}: GET upload status`, ok: [204] })
  await drain(status)
  const m = /^(?:bytes=)?0-(\d+)$/.exec(header(status.headers, 'range') ?? '')
  const loc = header(status.headers, 'location')
  if (m && Number(m[1]) + 1 === offset + chunk.length && loc) return new URL(loc, location).toString()
  throw new LadingError('REGISTRY_ERROR', `${what}: 416 Range Not Satisfiable; the registry holds ${m ? Number(m[1]) + 1 : 'an unknown number of'} bytes`)
}

/**
 * Upload a blob. The stream is verified against `expected` as it is read; chunks of
 * `chunkSize` (at least OCI-Chunk-Min-Length) are PATCHed, the rest goes in the closing
 * `PUT ?digest=`, sent only once the whole stream verified. A blob no larger than one chunk
 * is a monolithic POST + PUT. On any failure the session is cancelled and nothing is stored.
 */
export async function uploadBlob(conn: RegistryConnection, repo: string, body: Readable, expected: { digest?: Digest; size?: number; name?: string }, chunkSizeOption: number): Promise<UploadResult> {
  const verify = new VerifyingStream({ digest: expected.digest, size: expected.size, name: expected.name ?? (expected.digest ? `blob ${expected.digest}` : 'blob') }, undefined, body)
  const piping = pipeline(body, verify)
  piping.catch(() => { /* surfaced by iterating `verify` */ })
  let session: { location: string; minChunk: number }
  try {
    session = await startUpload(conn, repo)
  } catch (e) {
    verify.destroy()
    body.destroy()
    throw e
  }
  let location = session.location
  // Honour OCI-Chunk-Min-Length, but never let a registry make us buffer more than MAX_CHUNK.
  const chunkSize = Math.min(Math.max(chunkSizeOption, session.minChunk), Math.max(chunkSizeOption, MAX_CHUNK))
  let offset = 0
  let pending: Buffer[] = []
  let pendingLen = 0
  // One PATCH in flight while the next chunk is read and hashed (two chunks of memory at most).
  let inflight: Promise<string> | undefined
  try {
    for await (const c of verify) {
      const b = c as Buffer
      pending.push(b)
      pendingLen += b.length
      // Strictly more than a chunk: a blob of exactly chunkSize bytes still goes in one PUT.
      while (pendingLen > chunkSize) {
        const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen)
        const chunk = all.subarray(0, chunkSize)
        const rest = all.subarray(chunkSize)
        if (inflight) location = await inflight
        const at = offset
        inflight = patchChunk(conn, repo, location, chunk, at)
        inflight.catch(() => { /* awaited below */ })
        offset += chunk.length
        pending = rest.length ? [rest] : []
        pendingLen = rest.length
      }
    }
    if (inflight) location = await inflight
    inflight = undefined
    await piping
    const result = verify.result
    if (!result) throw new LadingError('REGISTRY_ERROR', `${conn.display(repo)}: upload stream ended without a result`)
    const last = Buffer.concat(pending, pendingLen)
    const url = new URL(location)
    url.searchParams.set('digest', result.digest)
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(last.length) }
    if (last.length > 0 && offset > 0) headers['content-range'] = `${offset}-${offset + last.length - 1}`
    const what = `${conn.display(repo)}: PUT blob ${result.digest}`
    const res = await conn.send({ method: 'PUT', url: url.toString(), headers, body: last, scopes: [pushScope(repo)], what, ok: [201, 204] })
    await drain(res)
    const dcd = header(res.headers, 'docker-content-digest')
    if (dcd !== undefined && dcd !== result.digest) throw new LadingError('DIGEST_MISMATCH', `${what}: registry stored ${sanitize(dcd, 140)}`)
    return result
  } catch (e) {
    verify.destroy()
    body.destroy()
    if (inflight) location = await inflight.catch(() => location)
    await cancelUpload(conn, repo, location)
    throw e
  }
}
