/**
 * The native gzip decoder (native/inflate.c through io/native-gunzip.ts) against Node's zlib, the
 * fallback: the same bytes out for every valid stream, the same error code for every invalid one,
 * bounded memory for a bomb, and LADING_GUNZIP=zlib switching it off. The zlib side runs in a
 * child process with that switch (the addon is loaded once per process), on the same cases.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import v8 from 'node:v8'
import vm from 'node:vm'
import zlib from 'node:zlib'
import { decompress } from '../../src/io/compression.js'
import { nativeGunzip, nativeGunzipUnavailableReason } from '../../src/io/native-gunzip.js'
import { buffer } from 'node:stream/consumers'
import { FCOMMENT, FEXTRA, FHCRC, FNAME, buildCases, decodeAll, fullHeaderMember, sampleData, type CaseResult } from './gunzip-cases.js'

const unavailable = nativeGunzipUnavailableReason()
/** Locally a missing addon skips with its reason; under CI the native decoder must be the one tested. */
const skipNative = process.env.CI === 'true' ? false : unavailable ? `native gunzip not built here: ${unavailable}` : false

/** decodeAll() in a child process with LADING_GUNZIP=zlib; also reports the switch's reason. */
function zlibResults(): { reason: string | null; results: CaseResult[] } {
  const cases = new URL('./gunzip-cases.js', import.meta.url).href
  const gunzip = new URL('../../src/io/native-gunzip.js', import.meta.url).href
  const script = `
    const { buildCases, decodeAll } = await import(${JSON.stringify(cases)})
    const { nativeGunzipUnavailableReason } = await import(${JSON.stringify(gunzip)})
    const results = await decodeAll(await buildCases())
    process.stdout.write(JSON.stringify({ reason: nativeGunzipUnavailableReason() ?? null, results }))`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, LADING_GUNZIP: 'zlib' },
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout) as { reason: string | null; results: CaseResult[] }
}

test('the native gzip decoder is built and used by default under CI', { skip: skipNative }, () => {
  assert.equal(unavailable, undefined)
})

test('gunzip: native and zlib decoders give identical bytes and the same error codes on every case', { skip: skipNative }, async () => {
  const native = await decodeAll(await buildCases())
  const { reason, results: viaZlib } = zlibResults()
  assert.equal(reason, 'LADING_GUNZIP=zlib')
  assert.equal(native.length, viaZlib.length)
  for (let i = 0; i < native.length; i++) {
    const n = native[i]!
    const z = viaZlib[i]!
    if (n.name.startsWith('error: ')) {
      assert.ok('code' in z, `${z.name}: zlib accepted it`)
      assert.ok('code' in n, `${n.name}: the native decoder accepted it`)
      assert.equal(n.code, 'INVALID_TAR', `${n.name}: ${n.message}`)
      assert.equal(n.code, z.code, n.name)
      assert.match(n.message, /^case: corrupt gzip data: /, n.name)
    } else {
      assert.ok('sha256' in z, `${z.name}: zlib failed: ${'message' in z ? z.message : ''}`)
      assert.ok('sha256' in n, `${n.name}: the native decoder failed: ${'message' in n ? n.message : ''}`)
      assert.deepEqual(n, z, n.name)
    }
  }
  // Which decoder ran is visible in how each names a bad ISIZE.
  const isize = (rs: CaseResult[]): string => {
    const r = rs.find((x) => x.name === 'error: corrupt ISIZE')
    return r && 'message' in r ? r.message : ''
  }
  assert.match(isize(viaZlib), /incorrect length check/, 'the LADING_GUNZIP=zlib child used zlib')
  assert.match(isize(native), /CRC-32 or ISIZE/, 'this process used the native decoder')
})

test('gunzip: a member header split anywhere between two chunks decodes (FEXTRA, FNAME, FCOMMENT, FHCRC)', { skip: skipNative }, async () => {
  // ISA-L 2.30's own gzip header parser fails on exactly this (FEXTRA or FHCRC split), which is
  // why native/inflate.c parses headers itself. The first member is over 512 bytes, so that
  // decompress()'s peek at the first bytes does not join the chunks of the second header.
  const first = zlib.gzipSync(sampleData(5000, 3))
  assert.ok(first.length > 512)
  const data = sampleData(20_000, 9)
  for (const flags of [FEXTRA, FHCRC, FNAME | FCOMMENT, FHCRC | FEXTRA | FNAME | FCOMMENT]) {
    const second = fullHeaderMember(data, flags)
    for (let k = 1; k < 40; k++) {
      const at = first.length + k
      const gz = Buffer.concat([first, second])
      const parts = [gz.subarray(0, at), gz.subarray(at, at + 3), gz.subarray(at + 3)]
      const out = await buffer(await decompress(Readable.from(parts, { objectMode: false }), 'gzip', 'split'))
      assert.equal(out.length, 5000 + data.length, `flags ${flags}, split at ${k}`)
      assert.ok(out.subarray(5000).equals(data), `flags ${flags}, split at ${k}`)
    }
  }
})

test('gunzip: with two calls in flight, output and errors are taken in call order (repeated)', { skip: skipNative }, async () => {
  // A pool thread may report a call's result before the thread of the call ahead of it does;
  // taken as they came, output was shuffled (right length, wrong bytes) and a later call's
  // "stream already failed" hid the real error. Both showed in about half of the runs.
  const data = sampleData(6_000_000, 13)
  const gz = zlib.gzipSync(data, { level: 1 })
  const bad = Buffer.from(gz)
  for (let i = 2000; i < 2100; i++) bad[i] = bad[i]! ^ 0x5a
  for (let round = 0; round < 12; round++) {
    const out = await buffer(await decompress(Readable.from([gz.subarray(0, 3 << 20), gz.subarray(3 << 20)]), 'gzip', 'order'))
    assert.ok(out.equals(data), `round ${round}: output in call order`)
    await assert.rejects(
      async () => buffer(await decompress(Readable.from([bad]), 'gzip', 'order')),
      (e: Error & { code?: string }) => e.code === 'INVALID_TAR' && !/already failed/.test(e.message),
      `round ${round}: the first error is the one reported`,
    )
  }
})

test(
  'security: randomly corrupted gzip streams: the native decoder accepts and rejects what zlib does, with the same bytes',
  { skip: skipNative },
  async () => {
    // Bit flips, truncations, inserted bytes and appended bytes over one to three members, fed in
    // random chunk sizes. The one known difference is left out: zlib ignores anything after a zero
    // byte that follows the last member within the same chunk; the native decoder refuses it.
    let seed = 20261203
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const members = [zlib.gzipSync(sampleData(20_000, 1)), zlib.gzipSync(Buffer.alloc(0)), zlib.gzipSync(sampleData(40_000, 2), { level: 1 })]
    let rejected = 0
    for (let i = 0; i < 400; i++) {
      let gz = Buffer.concat(Array.from({ length: 1 + rnd(3) }, () => members[rnd(members.length)]!))
      const kind = rnd(4)
      if (kind === 0)
        for (let k = 0; k < 1 + rnd(4); k++) {
          const at = rnd(gz.length)
          gz[at] = gz[at]! ^ (1 << rnd(8))
        }
      else if (kind === 1) gz = gz.subarray(0, 2 + rnd(gz.length - 2))
      else if (kind === 2) gz = Buffer.concat([gz, Buffer.from([1 + rnd(255), rnd(256), rnd(256)])])
      else {
        const at = 2 + rnd(gz.length - 2)
        gz = Buffer.concat([gz.subarray(0, at), Buffer.from([rnd(256)]), gz.subarray(at)])
      }
      if (gz[0] !== 0x1f || gz[1] !== 0x8b) continue // not gzip to decompress() at all
      let want: Buffer | undefined
      try {
        want = zlib.gunzipSync(gz)
      } catch {
        want = undefined
      }
      const size = 1 + rnd(5000)
      const parts: Buffer[] = []
      for (let o = 0; o < gz.length; o += size) parts.push(gz.subarray(o, o + size))
      let got: Buffer | undefined
      try {
        got = await buffer(await decompress(Readable.from(parts, { objectMode: false }), 'gzip', 'fuzz'))
      } catch (e) {
        assert.equal((e as { code?: string }).code, 'INVALID_TAR', `case ${i}: ${String(e)}`)
        got = undefined
      }
      assert.equal(
        got === undefined,
        want === undefined,
        `case ${i} (kind ${kind}): zlib ${want ? 'accepts' : 'rejects'}, native ${got ? 'accepts' : 'rejects'}`,
      )
      if (got && want) assert.ok(got.equals(want), `case ${i}: the same bytes`)
      if (!got) rejected++
    }
    assert.ok(rejected > 100, `${rejected} corrupt streams were rejected`)
  },
)

test('gunzip: a written chunk is acknowledged only once decoded (a writer may reuse it then, as pipeReturningBlocks does)', { skip: skipNative }, async () => {
  const data = sampleData(5_000_000, 17)
  const gz = zlib.gzipSync(data, { level: 1 })
  const g = nativeGunzip()!
  const out = buffer(g)
  for (let i = 0; i < gz.length; i += 256 * 1024) {
    const chunk = Buffer.from(gz.subarray(i, i + 256 * 1024))
    // Scribble over the chunk as soon as the write is done: it must not be read after that.
    await new Promise<void>((resolve, reject) => g.write(chunk, (e) => (e ? reject(e) : (chunk.fill(0xaa), resolve()))))
  }
  g.end()
  assert.ok((await out).equals(data))
})

test('gunzip: the native decoder checks CRC-32 and ISIZE of every member, not only the last', { skip: skipNative }, async () => {
  const a = zlib.gzipSync('first member\n')
  const b = zlib.gzipSync('second member\n')
  for (const at of [a.length - 8, a.length - 4]) {
    const bad = Buffer.from(a)
    bad[at] = bad[at]! ^ 0x80
    await assert.rejects(
      async () => {
        for await (const _ of await decompress(Readable.from([Buffer.concat([bad, b])]), 'gzip', 'm')) void _
      },
      (e: Error & { code?: string }) => e.code === 'INVALID_TAR' && /m: corrupt gzip data: incorrect data check/.test(e.message),
      `trailer byte ${at - a.length + 8} of the first member`,
    )
  }
})

test('security: a gzip bomb (1 GiB of zeros) read by a slow consumer decodes fully in bounded memory (native decoder)', { skip: skipNative }, async () => {
  // 1024 members of 1 MiB of zeros each: about 1 MB of gzip for 1 GiB of output.
  const member = zlib.gzipSync(Buffer.alloc(1024 * 1024))
  const bomb = Buffer.concat(Array.from({ length: 1024 }, () => member))
  assert.ok(bomb.length < 2 * 1024 * 1024)
  // Live memory, not garbage the collector has yet to find: collect before each sample.
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  gc()
  const base = process.memoryUsage()
  const out = await decompress(Readable.from([bomb]), 'gzip', 'bomb')
  let peakBuffers = 0
  let peakRss = 0
  let peakBuffered = 0
  let total = 0
  let nonZero = 0
  let n = 0
  for await (const chunk of out as AsyncIterable<Buffer>) {
    total += chunk.length
    if (chunk[0] !== 0 || chunk[chunk.length - 1] !== 0) nonZero++
    // Slow: every 128th chunk the reader stops for 200 ms, time enough for a decoder that
    // ignored backpressure to run hundreds of MiB ahead (it decodes zeros at GB/s).
    if (++n % 128 === 0) {
      await new Promise((r) => setTimeout(r, 200))
      peakBuffered = Math.max(peakBuffered, out.readableLength)
      gc()
      const m = process.memoryUsage()
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers - base.arrayBuffers)
      peakRss = Math.max(peakRss, m.rss - base.rss)
    }
  }
  assert.equal(total, 1024 * 1024 * 1024)
  assert.equal(nonZero, 0)
  assert.ok(peakBuffered <= 8 * 1024 * 1024, `${peakBuffered} bytes waited for the reader`)
  const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`
  assert.ok(peakBuffers < 64 * 1024 * 1024, `live Buffers grew by ${mib(peakBuffers)}`)
  // Looser: the allocator keeps freed pages, but 1 GiB piling up would show.
  assert.ok(peakRss < 192 * 1024 * 1024, `RSS grew by ${mib(peakRss)}`)
})
