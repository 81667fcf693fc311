import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import { parseDigest, digestOf } from '../../src/digest/digest.js'
import { VerifyingStream } from '../../src/digest/verify.js'
import { isLadingError } from '../../src/errors.js'

const EMPTY = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

test('parseDigest accepts sha256 and sha512', () => {
  assert.equal(parseDigest(EMPTY), EMPTY)
  assert.equal(digestOf(''), EMPTY)
  const s512 = digestOf('', 'sha512')
  assert.equal(parseDigest(s512), s512)
})

test('parseDigest rejects upper-case hex, wrong length, unknown algorithm, bad grammar', () => {
  for (const [bad, why] of [
    [EMPTY.toUpperCase().replace('SHA256', 'sha256'), /lowercase hex/],
    [EMPTY.slice(0, -1), /64 hex characters, got 63/],
    ['md5:d41d8cd98f00b204e9800998ecf8427e', /unsupported algorithm "md5"/],
    ['sha256', /not of the form/],
    ['SHA256:' + EMPTY.slice(7), /not of the form/],
  ] as const) {
    assert.throws(
      () => parseDigest(bad),
      (e: unknown) => isLadingError(e, 'DIGEST_INVALID') && why.test((e as Error).message),
      bad,
    )
  }
})

async function run(data: Buffer, expected: ConstructorParameters<typeof VerifyingStream>[0]): Promise<{ ended: boolean }> {
  let ended = false
  const sink = new Writable({
    write(_c, _e, cb) {
      cb()
    },
    final(cb) {
      ended = true
      cb()
    },
  })
  await pipeline(Readable.from([data.subarray(0, 3), data.subarray(3)]), new VerifyingStream(expected), sink)
  return { ended }
}

test('VerifyingStream passes matching bytes and reports result', async () => {
  const data = Buffer.from('hello world')
  const v = new VerifyingStream({ digest: digestOf(data), size: data.length })
  await pipeline(
    Readable.from([data]),
    v,
    new Writable({
      write(_c, _e, cb) {
        cb()
      },
    }),
  )
  assert.deepEqual(v.result, { digest: digestOf(data), size: 11 })
})

test('VerifyingStream fails before end on digest mismatch, naming expected and actual', async () => {
  const data = Buffer.from('hello world')
  const wrong = digestOf('other')
  await assert.rejects(
    run(data, { digest: wrong, size: data.length, name: 'layer' }),
    (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH') && (e as Error).message.includes(wrong) && (e as Error).message.includes(digestOf(data)),
  )
})

test('VerifyingStream fails as soon as the size is exceeded, and on short input', async () => {
  const data = Buffer.from('hello world')
  await assert.rejects(run(data, { size: 5 }), (e: unknown) => isLadingError(e, 'SIZE_MISMATCH'))
  await assert.rejects(run(data, { size: 50 }), (e: unknown) => isLadingError(e, 'SIZE_MISMATCH') && /got 11/.test((e as Error).message))
})

test('attestation: a verifier downstream of an attested stream for the same digest does not hash again, and a mismatch still fails before the end', async () => {
  const { carryAttestation, attestationOf } = await import('../../src/digest/verify.js')
  const { PassThrough } = await import('node:stream')
  const data = Buffer.from('hello world')
  // Good bytes: the downstream verifier trusts the upstream one and reports the digest.
  const up = new VerifyingStream({ digest: digestOf(data), size: data.length })
  assert.equal(attestationOf(up), digestOf(data))
  const mid = new PassThrough()
  carryAttestation(up, mid)
  const down = new VerifyingStream({ digest: digestOf(data), size: data.length }, undefined, mid)
  await pipeline(
    Readable.from([data]),
    up,
    mid,
    down,
    new Writable({
      write(_c, _e, cb) {
        cb()
      },
    }),
  )
  assert.deepEqual(down.result, { digest: digestOf(data), size: data.length })
  // Bad bytes: the attested upstream errors before its end, so the trusting verifier never
  // reports a result and the pipeline fails with the digest mismatch.
  const bad = Buffer.from('hello wörld')
  const up2 = new VerifyingStream({ digest: digestOf(data) })
  const down2 = new VerifyingStream({ digest: digestOf(data) }, undefined, up2)
  let ended = false
  await assert.rejects(
    pipeline(
      Readable.from([bad]),
      up2,
      down2,
      new Writable({
        write(_c, _e, cb) {
          cb()
        },
        final(cb) {
          ended = true
          cb()
        },
      }),
    ),
    (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH'),
  )
  assert.equal(ended, false)
  assert.equal(down2.result, undefined)
  // A different digest is not trusted: the downstream verifier hashes and catches it itself.
  const up3 = new VerifyingStream({})
  const down3 = new VerifyingStream({ digest: digestOf('other') }, undefined, up3)
  await assert.rejects(
    pipeline(
      Readable.from([data]),
      up3,
      down3,
      new Writable({
        write(_c, _e, cb) {
          cb()
        },
      }),
    ),
    (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH'),
  )
  // Size is still checked when trusted.
  const up4 = new VerifyingStream({ digest: digestOf(data) })
  const down4 = new VerifyingStream({ digest: digestOf(data), size: 3 }, undefined, up4)
  await assert.rejects(
    pipeline(
      Readable.from([data]),
      up4,
      down4,
      new Writable({
        write(_c, _e, cb) {
          cb()
        },
      }),
    ),
    (e: unknown) => isLadingError(e, 'SIZE_MISMATCH'),
  )
})

test('verifiedStream: the one verifying pipe: good bytes end, a flipped byte errors before the end, destroying it closes the input', async () => {
  const { verifiedStream } = await import('../../src/digest/verify.js')
  const data = Buffer.from('the one verifying pipe')
  const sink = (): Writable & { ended: boolean } => {
    const w = new Writable({
      write(_c, _e, cb) {
        cb()
      },
      final(cb) {
        w.ended = true
        cb()
      },
    }) as Writable & { ended: boolean }
    w.ended = false
    return w
  }
  const ok = verifiedStream(Readable.from([data]), { digest: digestOf(data), size: data.length })
  await pipeline(ok, sink())
  assert.deepEqual(ok.result, { digest: digestOf(data), size: data.length })

  const flipped = Buffer.from(data)
  flipped[3] = flipped[3]! ^ 1
  const out = sink()
  await assert.rejects(
    pipeline(verifiedStream(Readable.from([flipped]), { digest: digestOf(data), size: data.length, name: 'flipped' }), out),
    (e: unknown) => isLadingError(e, 'DIGEST_MISMATCH') && /flipped: digest mismatch/.test((e as Error).message),
  )
  assert.equal(out.ended, false, 'nothing downstream saw the end of bad bytes')

  // A reader that gives up early destroys the input (a file or a connection is closed).
  const input = new Readable({
    read() {
      this.push(Buffer.alloc(1024))
    },
  })
  const v = verifiedStream(input, { digest: digestOf(data) })
  v.destroy()
  await new Promise((r) => setImmediate(r))
  assert.equal(input.destroyed, true)

  // An input error surfaces on the verified stream.
  const failing = new Readable({
    read() {
      this.destroy(new Error('disk gone'))
    },
  })
  await assert.rejects(pipeline(verifiedStream(failing, {}), sink()), /disk gone/)
})
