/**
 * Blob uploads (distribution-spec §Pushing blobs). Three shapes, one closing rule:
 *
 * - Small blobs (up to MONOLITHIC_MAX, or a smaller `chunkSize`) are read whole and sent in the
 *   closing `PUT <location>?digest=` after a POST (§POST then PUT). The body is a Buffer, so
 *   every request is retried on its own.
 * - By default a larger blob is streamed in ONE `PATCH` (Content-Range and Content-Length when
 *   its size is known, chunked transfer encoding when it is not), as skopeo does: no buffering,
 *   no copy, no round trip per chunk. A stream cannot be replayed, so when that PATCH fails
 *   transiently (a reset, 5xx, 429) the session is cancelled and the whole upload starts over
 *   from a fresh stream (`reopen`), with backoff; without `reopen` the failure is reported.
 *   (Resuming from the registry's Range is no option: distribution voids a session whose
 *   PATCH broke off, and the bytes after that Range were already consumed from the source.)
 * - With an explicit `chunkSize`, a larger blob goes in PATCH chunks of that size (at least
 *   OCI-Chunk-Min-Length, §Pushing a blob in chunks), each a Buffer retried on its own.
 *
 * In every shape the closing `PUT ?digest=` is sent only once the whole stream verified, so a
 * blob that fails verification is never committed, and the session is cancelled on any failure.
 */
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { LadingError, isLadingError } from '../../errors.js'
import { VerifyingStream, type Digest, type Expected } from '../../digest/index.js'
import { sanitize } from './registry-error.js'
import { backoffDelay, isRetryableError, isRetryableStatus, parseRetryAfter, sleep } from './retry.js'
import { drain, header, pushScope, type RegistryConnection } from './connection.js'

export interface UploadResult {
  digest: Digest
  size: number
}

export interface UploadOptions {
  /** Upload blobs larger than this in PATCH chunks of this size instead of one streamed PATCH. */
  chunkSize?: number
  /** A fresh stream of the same bytes, so a failed streamed upload can start over. */
  reopen?: () => Promise<Readable>
}

/** Blobs up to this size are read whole and sent in one retryable PUT (configs, small layers). */
export const MONOLITHIC_MAX = 8 * 1024 * 1024
/** The most a registry's OCI-Chunk-Min-Length can make us hold in memory per upload. */
const MAX_CHUNK = 64 * 1024 * 1024

/** A failure of a streamed PATCH worth starting the upload over for (if the stream can be reopened). */
class RestartableFailure extends Error {
  constructor(
    readonly error: LadingError,
    readonly retryAfterMs?: number,
  ) {
    super(error.message)
  }
}

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
    const res = await conn.send({
      method: 'DELETE',
      url: location,
      scopes: [pushScope(repo)],
      what: `${conn.display(repo)}: cancel upload`,
      ok: [200, 202, 204, 404],
    })
    await drain(res)
  } catch {
    /* best effort: the registry expires abandoned sessions */
  }
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

/** The closing `PUT <location>?digest=` with the last bytes (if any) at `offset`; call only once the stream verified. */
async function closeUpload(
  conn: RegistryConnection,
  repo: string,
  location: string,
  result: UploadResult,
  last: Buffer,
  offset: number,
): Promise<UploadResult> {
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
}

/**
 * Upload a blob (see the module comment for the shapes). The stream is verified against
 * `expected` as it is read; on any failure the session is cancelled and nothing is stored.
 */
export async function uploadBlob(conn: RegistryConnection, repo: string, body: Readable, expected: Expected, opts: UploadOptions = {}): Promise<UploadResult> {
  const policy = conn.policy
  for (let attempt = 1; ; attempt++) {
    try {
      return await uploadOnce(conn, repo, body, expected, opts.chunkSize)
    } catch (e) {
      if (!(e instanceof RestartableFailure)) throw e
      if (!opts.reopen || attempt >= policy.attempts) throw e.error
      await sleep(backoffDelay(policy, attempt, e.retryAfterMs))
      body = await opts.reopen()
    }
  }
}

async function uploadOnce(conn: RegistryConnection, repo: string, body: Readable, expected: Expected, chunkSize: number | undefined): Promise<UploadResult> {
  const verify = new VerifyingStream(
    { digest: expected.digest, size: expected.size, name: expected.name ?? (expected.digest ? `blob ${expected.digest}` : 'blob') },
    undefined,
    body,
  )
  let piping: Promise<void> | undefined
  const pipe = (): Promise<void> => {
    if (!piping) {
      piping = pipeline(body, verify)
      piping.catch(() => {
        /* surfaced by reading `verify` */
      })
    }
    return piping
  }
  const fail = (): void => {
    verify.destroy()
    body.destroy()
  }
  if (chunkSize !== undefined) return chunkedUpload(conn, repo, verify, pipe(), fail, chunkSize)
  if (expected.size !== undefined && expected.size <= MONOLITHIC_MAX) return chunkedUpload(conn, repo, verify, pipe(), fail, MONOLITHIC_MAX)
  if (expected.size !== undefined) {
    // A blob of known size starts flowing only once its PATCH can take it (streamedUpload). An
    // error of the source meanwhile stays in body.errored, and the pipeline reports it then.
    body.on('error', () => {})
    return streamedUpload(conn, repo, verify, pipe, fail, expected.size)
  }
  // Unknown size (a recompressed layer): a small one still goes in one retryable PUT.
  // Starts the flow; pipe() already caught the promise, and each upload below awaits pipe() again.
  void pipe()
  let head: { chunks: Buffer[]; length: number; ended: boolean }
  try {
    head = await readPrefix(verify, MONOLITHIC_MAX)
  } catch (e) {
    fail()
    throw e
  }
  if (head.ended) return monolithicUpload(conn, repo, verify, pipe(), fail, Buffer.concat(head.chunks, head.length))
  verify.unshift(Buffer.concat(head.chunks, head.length))
  return streamedUpload(conn, repo, verify, pipe, fail, undefined)
}

/** Read from `s` until more than `max` bytes arrived or it ended (`ended`); errors of `s` reject. */
async function readPrefix(s: Readable, max: number): Promise<{ chunks: Buffer[]; length: number; ended: boolean }> {
  const chunks: Buffer[] = []
  let length = 0
  while (length <= max) {
    const c = s.read() as Buffer | null
    if (c !== null) {
      chunks.push(c)
      length += c.length
      continue
    }
    if (s.readableEnded) return { chunks, length, ended: true }
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        s.off('readable', done)
        s.off('end', done)
        s.off('error', failed)
        resolve()
      }
      const failed = (e: Error): void => {
        s.off('readable', done)
        s.off('end', done)
        reject(e)
      }
      s.once('readable', done)
      s.once('end', done)
      s.once('error', failed)
    })
  }
  return { chunks, length, ended: false }
}

async function monolithicUpload(
  conn: RegistryConnection,
  repo: string,
  verify: VerifyingStream,
  piping: Promise<void>,
  fail: () => void,
  bytes: Buffer,
): Promise<UploadResult> {
  let location: string | undefined
  try {
    await piping
    const result = verify.result
    if (!result) throw new LadingError('REGISTRY_ERROR', `${conn.display(repo)}: upload stream ended without a result`)
    location = (await startUpload(conn, repo)).location
    return await closeUpload(conn, repo, location, result, bytes, 0)
  } catch (e) {
    fail()
    if (location !== undefined) await cancelUpload(conn, repo, location)
    throw e
  }
}

/**
 * A registry that refuses an upload (401, 403) may answer before it reads the body and close
 * the connection, so the client sees a broken pipe, not the answer. The session's status says
 * whether that was a refusal (returned, to be reported as it is) or a transient failure.
 */
async function refusal(conn: RegistryConnection, repo: string, location: string): Promise<LadingError | undefined> {
  try {
    const res = await conn.send({
      method: 'GET',
      url: location,
      scopes: [pushScope(repo)],
      what: `${conn.display(repo)}: PATCH blob (upload status)`,
      ok: [200, 204, 404, 416],
    })
    await drain(res)
    return undefined
  } catch (e) {
    return isLadingError(e, 'UNAUTHORIZED') || isLadingError(e, 'DENIED') ? e : undefined
  }
}

/** One PATCH streaming the whole blob, then the closing PUT (see the module comment). */
async function streamedUpload(
  conn: RegistryConnection,
  repo: string,
  verify: VerifyingStream,
  pipe: () => Promise<void>,
  fail: () => void,
  size: number | undefined,
): Promise<UploadResult> {
  let location: string | undefined
  try {
    location = (await startUpload(conn, repo)).location
    // Reading (and hashing) the source starts now, not before: until the registry can take the
    // bytes, that work would only delay handling its answer to the POST.
    const piping = pipe()
    const what = `${conn.display(repo)}: PATCH blob`
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' }
    if (size !== undefined) {
      headers['content-length'] = String(size)
      if (size > 0) headers['content-range'] = `0-${size - 1}`
    }
    let res
    try {
      res = await conn.sendStream({ method: 'PATCH', url: location, headers, body: verify, scopes: [pushScope(repo)], what })
    } catch (e) {
      // The body's own failure (digest or size) is final; a transient network failure is worth a fresh start.
      await piping.catch(() => {})
      if (verify.errored) throw verify.errored
      if (isLadingError(e, 'NETWORK') && isRetryableError(e)) throw (await refusal(conn, repo, location)) ?? new RestartableFailure(e)
      throw e
    }
    if (res.statusCode !== 202) {
      // Attempts unsaid: whether this PATCH goes again is decided by the caller (RestartableFailure).
      const err = await conn.failure(res, what, { attempts: 0 })
      if (isRetryableStatus(res.statusCode)) {
        const retryAfter = res.statusCode === 429 || res.statusCode === 503 ? parseRetryAfter(res.headers['retry-after']) : undefined
        throw new RestartableFailure(err, retryAfter)
      }
      throw err
    }
    await drain(res)
    const next = header(res.headers, 'location')
    if (!next) throw new LadingError('REGISTRY_ERROR', `${what}: 202 without Location`)
    location = new URL(next, location).toString()
    // The registry has every byte, but only a verified stream gets the closing PUT.
    await piping
    const result = verify.result
    if (!result) throw new LadingError('REGISTRY_ERROR', `${conn.display(repo)}: upload stream ended without a result`)
    return await closeUpload(conn, repo, location, result, Buffer.alloc(0), result.size)
  } catch (e) {
    fail()
    if (location !== undefined) await cancelUpload(conn, repo, location)
    throw e
  }
}

/**
 * PATCH chunks of `chunkSize` (at least OCI-Chunk-Min-Length), the rest in the closing PUT; a
 * blob no larger than one chunk is a monolithic POST + PUT.
 */
async function chunkedUpload(
  conn: RegistryConnection,
  repo: string,
  verify: VerifyingStream,
  piping: Promise<void>,
  fail: () => void,
  chunkSizeOption: number,
): Promise<UploadResult> {
  let session: { location: string; minChunk: number }
  try {
    session = await startUpload(conn, repo)
  } catch (e) {
    fail()
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
        inflight.catch(() => {
          /* awaited below */
        })
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
    return await closeUpload(conn, repo, location, result, Buffer.concat(pending, pendingLen), offset)
  } catch (e) {
    fail()
    if (inflight) location = await inflight.catch(() => location)
    await cancelUpload(conn, repo, location)
    throw e
  }
}
