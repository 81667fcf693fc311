/**
 * Blob downloads (distribution-spec §Pulling blobs): GET with redirects followed, the bytes
 * through one VerifyingStream, and an interrupted body resumed with `Range: bytes=<received>-`
 * (registries SHOULD support Range) into that same stream, so the digest covers the whole
 * blob exactly once. A 206 must start where we asked; a 200 to a Range request is skipped
 * forward.
 */
import type { Readable } from 'node:stream'
import { LadingError } from '../../errors.js'
import { VerifyingStream, type Digest } from '../../digest/index.js'
import { backoffDelay, isRetryableError, sleep } from './retry.js'
import { describeNetworkError, drain, header, networkHint, pullScope, type RegistryConnection, type Response } from './connection.js'

/** GET a blob from `offset`, following redirects; checks a 206 starts where asked. */
async function openBlob(
  conn: RegistryConnection,
  repo: string,
  desc: { digest: Digest; size?: number },
  offset: number,
): Promise<{ res: Response; skip: number }> {
  const what = `${conn.display(repo)}: GET blob ${desc.digest}`
  const res = await conn.send({
    method: 'GET',
    url: `/v2/${repo}/blobs/${desc.digest}`,
    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    scopes: [pullScope(repo)],
    what,
    ok: offset > 0 ? [200, 206] : [200],
    followRedirects: true,
  })
  const cl = header(res.headers, 'content-length')
  if (res.statusCode === 206) {
    const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '')
    if (!m || Number(m[1]) !== offset) {
      await drain(res)
      throw new LadingError(
        'REGISTRY_ERROR',
        `${what}: resumed at byte ${offset} but the registry answered Content-Range ${JSON.stringify(header(res.headers, 'content-range') ?? '')}`,
      )
    }
    return { res, skip: 0 }
  }
  if (desc.size !== undefined && cl !== undefined && Number(cl) !== desc.size) {
    res.body.destroy()
    throw new LadingError('SIZE_MISMATCH', `blob ${desc.digest} of ${conn.display(repo)}: size mismatch: expected ${desc.size} bytes, registry sends ${cl}`)
  }
  // 200 to a Range request: the registry ignored it; skip what we already have.
  return { res, skip: offset }
}

/**
 * A verifying stream of a blob. A body interrupted by a network error is resumed with
 * `Range: bytes=<received>-` (up to the retry budget); the bytes flow into the same
 * VerifyingStream, so the digest covers the whole blob exactly once. Each response body is
 * pumped straight into that stream (with backpressure): no per-chunk promise or generator on
 * the hot path of a pull.
 */
export async function downloadBlob(conn: RegistryConnection, repo: string, desc: { digest: Digest; size?: number }): Promise<Readable> {
  const verify = new VerifyingStream({ digest: desc.digest, size: desc.size, name: `blob ${desc.digest} of ${conn.display(repo)}` })
  const first = await openBlob(conn, repo, desc, 0)
  const policy = conn.policy
  const what = `${conn.display(repo)}: GET blob ${desc.digest}`
  let received = 0
  let resumes = 0
  let current: Readable | undefined
  // A consumer that stops early (or a verification failure) ends the download.
  verify.once('close', () => current?.destroy())

  const resume = async (e: Error): Promise<void> => {
    if (verify.destroyed) return
    const complete = desc.size !== undefined && received >= desc.size
    if (complete || !isRetryableError(e) || resumes + 1 >= policy.attempts) {
      verify.destroy(new LadingError('NETWORK', `${what}: download failed after ${received} bytes: ${describeNetworkError(e)}${networkHint(e)}`, { cause: e }))
      return
    }
    resumes++
    try {
      await sleep(backoffDelay(policy, resumes))
      if (verify.destroyed) return
      pump(await openBlob(conn, repo, desc, received))
    } catch (err) {
      verify.destroy(err as Error)
    }
  }

  const pump = (part: { res: Response; skip: number }): void => {
    const body = part.res.body
    current = body
    if (verify.destroyed) {
      body.destroy()
      return
    }
    let skip = part.skip
    let done = false
    let waiting = false
    const onDrain = (): void => {
      waiting = false
      body.resume()
    }
    const onData = (c: Buffer): void => {
      let b = c
      if (skip > 0) {
        // A 200 to a Range request: the registry ignored it; drop what we already have.
        if (b.length <= skip) {
          skip -= b.length
          return
        }
        b = b.subarray(skip)
        skip = 0
      }
      received += b.length
      if (!verify.write(b) && !waiting) {
        waiting = true
        body.pause()
        verify.once('drain', onDrain)
      }
    }
    const finish = (e?: Error): void => {
      if (done) return
      done = true
      body.off('data', onData)
      verify.off('drain', onDrain)
      if (e === undefined) {
        verify.end()
        return
      }
      body.destroy()
      void resume(e)
    }
    body.on('data', onData)
    body.once('end', () => finish())
    body.once('error', (e) => finish(e))
    body.once('close', () => finish(Object.assign(new Error('response body closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })))
  }

  pump(first)
  return verify
}
