import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { isLadingError } from '../../src/errors.js'
import { compress, decompress, detectCompression, parseCompression } from '../../src/io/compression.js'
import { GZIP_BLOCK_SIZE, ParallelGzip, defaultGzipEngine, type GzipEngine } from '../../src/io/gzip-parallel.js'
import { nativeGzip, nativeGzipUnavailableReason } from '../../src/io/native-gzip.js'
import { OUT_BLOCK_SIZE, PooledFileWriter, poolStats, returnOutBlock, takeOutBlock } from '../../src/io/block-pool.js'
import { requireTool } from '../helpers/tools.js'
import { tempDir } from '../fixtures/temp.js'

const exec = promisify(execFile)

/** Compressible but not trivial data spanning several gzip blocks. */
function sampleData(bytes: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'usr/lib/x86_64-linux-gnu/', '\n', '\0\0\0\0', 'libc.so.6']
  const parts: Buffer[] = []
  let n = 0
  let seed = 12345
  while (n < bytes) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    const b = seed % 17 === 0 ? randomBytes(64) : Buffer.from(words[seed % words.length]!)
    parts.push(b)
    n += b.length
  }
  return Buffer.concat(parts).subarray(0, bytes)
}

function chunked(data: Buffer, size: number): Readable {
  const parts: Buffer[] = []
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size))
  return Readable.from(parts, { objectMode: false })
}

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isLadingError(e), `expected a LadingError, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    if (re) assert.match(e.message, re)
    return true
  })
}

/** Both encoders where the native one is built (CI builds it); the zlib one everywhere. */
const engines: GzipEngine[] = defaultGzipEngine() === 'libdeflate' ? ['libdeflate', 'zlib'] : ['zlib']

async function gzipWith(engine: GzipEngine, data: Buffer | Readable, level?: number): Promise<Buffer> {
  const z = new ParallelGzip({ engine, ...(level !== undefined ? { level } : {}) })
  const input = Buffer.isBuffer(data) ? Readable.from([data]) : data
  return buffer(input.pipe(z))
}

/** Split a gzip file into its members (RFC 1952 §2.2), checking each header and trailer. */
function gzipMembers(gz: Buffer): Buffer[] {
  const out: Buffer[] = []
  let off = 0
  while (off < gz.length) {
    assert.deepEqual([...gz.subarray(off, off + 4)], [0x1f, 0x8b, 8, 0], `member at ${off}: gzip magic, deflate, no flags`)
    assert.equal(gz.readUInt32LE(off + 4), 0, 'MTIME is 0')
    assert.equal(gz[off + 9], 0xff, 'OS is 255 (unknown)')
    // inflateRaw stops at the member's final block; the bytes it used tell where the trailer is.
    const inf = zlib.inflateRawSync(gz.subarray(off + 10), { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } }
    const end = off + 10 + inf.engine.bytesWritten
    assert.equal(gz.readUInt32LE(end), zlib.crc32(inf.buffer) >>> 0, 'CRC-32 trailer')
    assert.equal(gz.readUInt32LE(end + 4), inf.buffer.length >>> 0, 'ISIZE trailer')
    out.push(inf.buffer)
    off = end + 8
  }
  return out
}

test(
  'the native (libdeflate) gzip engine is built and used by default under CI',
  { skip: process.env.CI === 'true' ? false : nativeGzipUnavailableReason() ? `not built here: ${nativeGzipUnavailableReason()}` : false },
  () => {
    assert.equal(nativeGzipUnavailableReason(), undefined)
    assert.equal(defaultGzipEngine(), 'libdeflate')
    assert.equal(defaultGzipEngine(0), 'zlib', "level 0 (stored) is zlib's")
  },
)

test(
  'libdeflate gzip: one member per 1 MiB block, each with MTIME 0, OS 255 and a valid trailer',
  { skip: engines.includes('libdeflate') ? false : 'libdeflate engine not built' },
  async () => {
    const data = sampleData(2 * GZIP_BLOCK_SIZE + 5)
    const gz = await gzipWith('libdeflate', chunked(data, 70001))
    const members = gzipMembers(gz)
    assert.deepEqual(
      members.map((m) => m.length),
      [GZIP_BLOCK_SIZE, GZIP_BLOCK_SIZE, 5],
    )
    assert.ok(Buffer.concat(members).equals(data))
    assert.ok(zlib.gunzipSync(gz).equals(data), 'node zlib reads every member')
    // Empty input: exactly one member of nothing.
    const empty = await gzipWith('libdeflate', Buffer.alloc(0))
    assert.deepEqual(
      gzipMembers(empty).map((m) => m.length),
      [0],
    )
  },
)

test(
  'libdeflate gzip stores incompressible blocks instead of deflating them, and still compresses the rest',
  { skip: engines.includes('libdeflate') ? false : 'libdeflate engine not built' },
  async () => {
    const noise = randomBytes(3 * GZIP_BLOCK_SIZE)
    const text = sampleData(2 * GZIP_BLOCK_SIZE)
    const gz = await gzipWith('libdeflate', Buffer.concat([noise, text]))
    const members = gzipMembers(gz)
    assert.equal(members.length, 5)
    assert.ok(Buffer.concat(members).equals(Buffer.concat([noise, text])))
    // A stored member is the data plus deflate's 5 bytes per stored block and the gzip framing;
    // its first bits say BTYPE=00 (stored).
    let off = 0
    for (let i = 0; i < 5; i++) {
      const start = off
      const inf = zlib.inflateRawSync(gz.subarray(off + 10), { info: true }) as unknown as { engine: { bytesWritten: number } }
      off += 10 + inf.engine.bytesWritten + 8
      const btype = (gz[start + 10]! >> 1) & 3
      if (i < 3) {
        assert.equal(btype, 0, `member ${i} (random bytes) is stored`)
        assert.ok(off - start < GZIP_BLOCK_SIZE + 200, `member ${i}: ${off - start} bytes`)
      } else {
        assert.notEqual(btype, 0, `member ${i} (text) is compressed`)
        assert.ok(off - start < GZIP_BLOCK_SIZE / 2, `member ${i}: ${off - start} bytes`)
      }
    }
    // Same bytes in, same bytes out.
    assert.ok(gz.equals(await gzipWith('libdeflate', chunked(Buffer.concat([noise, text]), 77777))))
    // Random bytes that repeat (high entropy, yet compressible): the level-1 probe sees the repeats.
    const piece = randomBytes(8 * 1024)
    const repeated = Buffer.concat(Array.from({ length: GZIP_BLOCK_SIZE / piece.length }, () => piece))
    const rgz = await gzipWith('libdeflate', repeated)
    assert.ok(rgz.length < GZIP_BLOCK_SIZE / 4, `repeated random data compressed to ${rgz.length} bytes`)
  },
)

test(
  'libdeflate gzip into recycled output blocks: the same bytes, written by PooledFileWriter, blocks reused',
  { skip: engines.includes('libdeflate') ? false : 'libdeflate engine not built' },
  async (t) => {
    // Random blocks are stored (the largest output a block can have), text blocks compressed.
    const data = Buffer.concat([randomBytes(8 * GZIP_BLOCK_SIZE), sampleData(16 * GZIP_BLOCK_SIZE + 777)])
    const members = 25
    const plain = await gzipWith('libdeflate', chunked(data, 65536))
    const dir = tempDir(t, { prefix: 'lading-gzip-out-' })
    let madeInRound1 = 0
    for (let round = 0; round < 2; round++) {
      const before = poolStats().outMade
      const file = path.join(dir, `out-${round}`)
      const z = new ParallelGzip({ engine: 'libdeflate', recycleOutput: true })
      await pipeline(chunked(data, 65536), z, new PooledFileWriter(await fs.promises.open(file, 'wx'), 8 * 1024 * 1024))
      assert.ok(fs.readFileSync(file).equals(plain), `round ${round}: the file holds exactly the bytes of the plain encoder`)
      if (round === 1) madeInRound1 = poolStats().outMade - before
    }
    // The writer handed every block back once written: the second round reused the first's
    // (it makes new ones only where more were in flight at once than in the first round; without
    // the hand-back it would make one per member).
    assert.ok(madeInRound1 < members / 2, `the second round made ${madeInRound1} new blocks for ${members} members`)
    assert.ok(poolStats().outFree > 0)
    const a = takeOutBlock()
    const b = takeOutBlock()
    assert.equal(a.length, OUT_BLOCK_SIZE)
    assert.notEqual(a.buffer, b.buffer)
    returnOutBlock(a.subarray(0, 10))
    returnOutBlock(a.subarray(0, 10)) // a second return of the same block is ignored
    returnOutBlock(Buffer.alloc(OUT_BLOCK_SIZE)) // and a foreign buffer never enters the pool
    assert.equal(takeOutBlock().buffer, a.buffer)
    assert.notEqual(takeOutBlock().buffer, a.buffer, 'a block given back once is handed out once')
    returnOutBlock(b)
    // The native call refuses an output buffer without room for libdeflate's bound.
    const native = nativeGzip()!
    await assert.rejects(native.gzipMemberInto(randomBytes(GZIP_BLOCK_SIZE), 4, Buffer.alloc(1024)), /smaller than libdeflate's bound/)
  },
)

test(
  'libdeflate gzip at level 4 is smaller than zlib gzip at level 4 on text-like data',
  { skip: engines.includes('libdeflate') ? false : 'libdeflate engine not built' },
  async () => {
    const data = sampleData(4 * GZIP_BLOCK_SIZE)
    const fast = await gzipWith('libdeflate', data, 4)
    const slow = await gzipWith('zlib', data, 4)
    assert.ok(fast.length < slow.length, `libdeflate ${fast.length} bytes vs zlib ${slow.length}`)
  },
)

const tarHeader = (): Buffer => {
  const h = Buffer.alloc(512)
  h.write('file.txt', 0)
  h.write('ustar\0', 257, 'latin1')
  return h
}

test('detectCompression recognises gzip, zstd, tar, empty and zero-block streams by magic bytes', () => {
  assert.equal(detectCompression(zlib.gzipSync('x')), 'gzip')
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0])), 'zstd')
  assert.equal(detectCompression(Buffer.from([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0])), 'zstd', 'skippable frame')
  assert.equal(detectCompression(tarHeader()), 'none')
  const gnu = tarHeader()
  gnu.write('ustar  \0', 257, 'latin1')
  assert.equal(detectCompression(gnu), 'none')
  assert.equal(detectCompression(Buffer.alloc(0)), 'none')
  assert.equal(detectCompression(Buffer.alloc(1024)), 'none')
  assert.equal(detectCompression(Buffer.from('hello world, not an archive')), undefined)
  assert.equal(detectCompression(Buffer.from([0x1f])), undefined)
})

test('parseCompression accepts the three names and refuses others', () => {
  assert.equal(parseCompression('zstd'), 'zstd')
  assert.throws(
    () => parseCompression('bzip2'),
    (e: unknown) => isLadingError(e, 'USAGE'),
  )
})

test('gzip round trip through compress and decompress over several blocks', async () => {
  const data = sampleData(3 * GZIP_BLOCK_SIZE + 12345)
  const gz = await buffer(compress(chunked(data, 70000), 'gzip'))
  assert.ok(gz.length < data.length / 2, `compressed ${gz.length} of ${data.length}`)
  assert.deepEqual(zlib.gunzipSync(gz), data, 'node zlib reads it')
  const back = await buffer(await decompress(Readable.from([gz]), 'gzip', 'layer'))
  assert.ok(back.equals(data))
})

test('zlib gzip (the fallback) is one gzip member with mtime 0 and fixed OS byte', async () => {
  const gz = await gzipWith('zlib', sampleData(2 * GZIP_BLOCK_SIZE + 5))
  assert.deepEqual([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])
  // Exactly one member: gunzip of the deflate body alone consumes everything but the 8-byte trailer.
  const raw = zlib.inflateRawSync(gz.subarray(10, gz.length - 8))
  assert.equal(raw.length, 2 * GZIP_BLOCK_SIZE + 5)
  assert.equal(gz.readUInt32LE(gz.length - 4), raw.length >>> 0)
  assert.equal(gz.readUInt32LE(gz.length - 8), zlib.crc32(raw) >>> 0)
  assert.equal(gzipMembers(gz).length, 1)
})

test('gzip (both engines) and zstd output is deterministic whatever the input chunking and level given', async () => {
  const data = sampleData(2 * GZIP_BLOCK_SIZE + 777)
  for (const engine of engines) {
    const a = await gzipWith(engine, chunked(data, 1 << 20))
    const b = await gzipWith(engine, chunked(data, 4099))
    assert.ok(a.equals(b), `${engine}: same bytes for the same input`)
    assert.ok(!a.equals(await gzipWith(engine, chunked(data, 65536), 1)), `${engine}: level changes the output`)
  }
  for (const c of ['gzip', 'zstd'] as const) {
    const a = await buffer(compress(chunked(data, 1 << 20), c))
    const b = await buffer(compress(chunked(data, 4099), c))
    assert.ok(a.equals(b), `${c}: same bytes for the same input`)
    const fast = await buffer(compress(chunked(data, 65536), c, { level: 1 }))
    assert.ok(!fast.equals(a), `${c}: level changes the output`)
    const fast2 = await buffer(compress(chunked(data, 1000), c, { level: 1 }))
    assert.ok(fast.equals(fast2), `${c}: deterministic at level 1 too`)
  }
})

test('gzip output (default engine) does not depend on the number of threads (UV_THREADPOOL_SIZE 1 vs 4)', async () => {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const mod = path.join(here, '..', '..', 'src', 'io', 'compression.js')
  const script = `import { compress } from ${JSON.stringify(mod)}; import { Readable } from 'node:stream'; import { createHash } from 'node:crypto';
const parts = []; let s = 7; for (let i = 0; i < 40000; i++) { s = (s * 48271) % 2147483647; parts.push('line ' + (s % 1000) + ' ' + 'x'.repeat(s % 97) + '\\n') }
const data = Buffer.from(parts.join('').repeat(3)); const h = createHash('sha256');
for await (const c of compress(Readable.from([data]), 'gzip')) h.update(c); console.log(h.digest('hex'))`
  const digests = []
  for (const n of ['1', '4']) {
    const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, UV_THREADPOOL_SIZE: n } })
    digests.push(stdout.trim())
  }
  assert.match(digests[0]!, /^[0-9a-f]{64}$/)
  assert.equal(digests[0], digests[1])
})

test('parallel gzip from either engine is accepted by GNU gzip (gzip -t, gzip -dc)', async (t) => {
  if (!requireTool(t, 'gzip')) return
  const dir = tempDir(t, { prefix: 'lading-gz-' })
  const data = sampleData(3 * GZIP_BLOCK_SIZE + 99)
  for (const engine of engines) {
    const file = path.join(dir, `${engine}.gz`)
    await fs.promises.writeFile(file, await gzipWith(engine, data, 9))
    await exec('gzip', ['-t', file])
    const out = await new Promise<Buffer>((resolve, reject) => {
      const p = spawn('gzip', ['-dc', file])
      const chunks: Buffer[] = []
      p.stdout.on('data', (c: Buffer) => chunks.push(c))
      p.on('error', reject)
      p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`gzip -dc exited ${code}`))))
    })
    assert.equal(createHash('sha256').update(out).digest('hex'), createHash('sha256').update(data).digest('hex'), engine)
  }
})

test('empty input compresses to valid empty gzip and zstd streams', async () => {
  const gz = await buffer(compress(Readable.from([]), 'gzip'))
  assert.equal(zlib.gunzipSync(gz).length, 0)
  const zs = await buffer(compress(Readable.from([]), 'zstd'))
  assert.equal((await buffer(await decompress(Readable.from([zs]), 'zstd'))).length, 0)
})

test('zstd round trip and none passthrough', async () => {
  const data = sampleData(1_500_000)
  const zs = await buffer(compress(chunked(data, 100000), 'zstd', { level: 5 }))
  assert.deepEqual([...zs.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd])
  assert.ok((await buffer(await decompress(Readable.from([zs]), 'zstd', 'z'))).equals(data))
  const tar = Buffer.concat([tarHeader(), Buffer.alloc(1024)])
  assert.ok((await buffer(compress(Readable.from([tar]), 'none'))).equals(tar))
  assert.ok((await buffer(await decompress(chunked(tar, 100), 'none'))).equals(tar))
  assert.ok((await buffer(await decompress(chunked(tar, 100)))).equals(tar), 'detected as tar without an expectation')
})

test('multi-member gzip decodes completely', async () => {
  const gz = Buffer.concat([zlib.gzipSync('first member\n'), zlib.gzipSync('second member\n')])
  assert.equal((await buffer(await decompress(Readable.from([gz]), 'gzip'))).toString(), 'first member\nsecond member\n')
})

test('decompress refuses a media type that disagrees with the bytes (COMPRESSION_MISMATCH names both)', async () => {
  const zs = await buffer(compress(Readable.from([Buffer.from('data')]), 'zstd'))
  await rejectsWith(decompress(Readable.from([zs]), 'gzip', 'sha256:abc'), 'COMPRESSION_MISMATCH', /sha256:abc: media type says gzip but the data is zstd/)
  await rejectsWith(decompress(Readable.from([zlib.gzipSync('x')]), 'none', 'L'), 'COMPRESSION_MISMATCH', /says none but the data is gzip/)
  await rejectsWith(decompress(Readable.from([tarHeader()]), 'zstd', 'L'), 'COMPRESSION_MISMATCH', /says zstd but the data is none \(uncompressed tar\)/)
  await rejectsWith(decompress(Readable.from([Buffer.from('garbage, not compressed at all')]), 'gzip', 'L'), 'COMPRESSION_MISMATCH', /not recognised/)
  await rejectsWith(decompress(Readable.from([]), 'gzip', 'L'), 'COMPRESSION_MISMATCH', /says gzip but the data is none \(empty\)/)
})

test('truncated gzip and zstd streams are INVALID_TAR errors, not hangs', async () => {
  const data = sampleData(300000)
  const gz = zlib.gzipSync(data)
  await rejectsWith(buffer(await decompress(Readable.from([gz.subarray(0, gz.length - 20)]), 'gzip', 'blobA')), 'INVALID_TAR', /blobA: corrupt gzip data/)
  const zs = await buffer(compress(Readable.from([data]), 'zstd'))
  await rejectsWith(buffer(await decompress(Readable.from([zs.subarray(0, zs.length - 20)]), 'zstd', 'blobB')), 'INVALID_TAR', /blobB: corrupt zstd data/)
})

test('trailing garbage after gzip or zstd data is an INVALID_TAR error', async () => {
  const gz = zlib.gzipSync('payload')
  await rejectsWith(buffer(await decompress(Readable.from([Buffer.concat([gz, Buffer.from('not gzip at all')])]), 'gzip')), 'INVALID_TAR')
  const zs = await buffer(compress(Readable.from([Buffer.from('payload')]), 'zstd'))
  await rejectsWith(buffer(await decompress(Readable.from([Buffer.concat([zs, Buffer.from('junk after frame')])]), 'zstd')), 'INVALID_TAR')
})

test('corrupt deflate data inside a gzip member is an INVALID_TAR error', async () => {
  const gz = Buffer.from(zlib.gzipSync(sampleData(100000)))
  for (let i = 40; i < 80; i++) gz[i] = gz[i]! ^ 0xff
  await rejectsWith(buffer(await decompress(Readable.from([gz]), 'gzip')), 'INVALID_TAR')
})

test('an error of the input stream (e.g. a digest mismatch) reaches the decompressed stream', async () => {
  const input = new PassThrough()
  const gz = zlib.gzipSync(sampleData(200000))
  input.write(gz.subarray(0, 1000))
  const out = await decompress(input, 'gzip')
  const boom = new Error('digest mismatch upstream')
  setImmediate(() => input.destroy(boom))
  await assert.rejects(buffer(out), (e: unknown) => (e as Error).message.includes('digest mismatch upstream'))
})

test('compress refuses an out-of-range level', () => {
  assert.throws(
    () => compress(Readable.from([]), 'gzip', { level: 12 }),
    (e: unknown) => isLadingError(e, 'USAGE'),
  )
  assert.throws(
    () => compress(Readable.from([]), 'zstd', { level: 99 }),
    (e: unknown) => isLadingError(e, 'USAGE'),
  )
})

test('zlib engine: blocks are primed with the previous 32 KiB, so parallel gzip compresses like one stream', async () => {
  // A 16 KiB random pattern repeated over 8 blocks: without priming each block would carry the
  // pattern again (8 x 16 KiB); primed, every block after the first refers back across the boundary.
  const pattern = randomBytes(16 * 1024)
  const data = Buffer.concat(Array.from({ length: (8 * GZIP_BLOCK_SIZE) / pattern.length }, () => pattern))
  const parallel = await gzipWith('zlib', data, 6)
  const single = zlib.gzipSync(data, { level: 6 })
  assert.ok(parallel.length < single.length + 4 * 1024, `parallel ${parallel.length} bytes vs single stream ${single.length}`)
  assert.ok(zlib.gunzipSync(parallel).equals(data))
})

test('decompression bombs are decoded only as fast as they are read (bounded memory, gzip and zstd)', async () => {
  const zeros = Buffer.alloc(1024 * 1024)
  for (const c of ['gzip', 'zstd'] as const) {
    // 512 MiB of zeros compresses to well under a megabyte.
    const bomb = await buffer(
      compress(
        Readable.from(
          (function* () {
            for (let i = 0; i < 512; i++) yield zeros
          })(),
          { objectMode: false },
        ),
        c,
      ),
    )
    assert.ok(bomb.length < 1024 * 1024, `${c} bomb is ${bomb.length} bytes`)
    const out = await decompress(Readable.from([bomb]), c, 'bomb')
    const first = await new Promise<Buffer>((resolve) =>
      out.once('data', (d: Buffer) => {
        out.pause()
        resolve(d)
      }),
    )
    assert.ok(first.length > 0)
    await new Promise((r) => setTimeout(r, 300))
    assert.ok(out.readableLength <= 16 * 1024 * 1024, `${c}: ${out.readableLength} bytes buffered while nobody reads`)
    out.destroy()
  }
})

test('zstd streams decode one after another and side by side; a failed one does not poison the next', async () => {
  const inputs = [0, 1, 2, 3].map((i) => sampleData(300_000 + i * 1000))
  const frames = await Promise.all(inputs.map(async (d) => buffer(compress(Readable.from([d]), 'zstd'))))
  for (let i = 0; i < frames.length; i++) {
    assert.ok((await buffer(await decompress(Readable.from([frames[i]!]), 'zstd'))).equals(inputs[i]!), `sequential ${i}`)
  }
  const together = await Promise.all(frames.map(async (f) => buffer(await decompress(chunked(f, 10_000), 'zstd'))))
  together.forEach((out, i) => assert.ok(out.equals(inputs[i]!), `concurrent ${i}`))
  // A failed stream must not poison the next one.
  await rejectsWith(buffer(await decompress(Readable.from([frames[0]!.subarray(0, 100)]), 'zstd')), 'INVALID_TAR')
  assert.ok((await buffer(await decompress(Readable.from([frames[1]!]), 'zstd'))).equals(inputs[1]!))
})

test('block pool: only whole blocks it made are reused; the gzip encoder hands back blocks only with recycleInput', async () => {
  const { POOL_BLOCK_SIZE, returnBlock, takeBlock } = await import('../../src/io/block-pool.js')
  const a = takeBlock()
  returnBlock(a)
  assert.equal(takeBlock(), a, 'a returned block is handed out again')
  returnBlock(a.subarray(0, 10))
  returnBlock(Buffer.alloc(POOL_BLOCK_SIZE))
  assert.notEqual(takeBlock(), a, 'views and foreign buffers never enter the pool')
  if (!engines.includes('libdeflate')) return
  const data = sampleData(3 * POOL_BLOCK_SIZE)
  const fill = (): Buffer[] =>
    [0, 1, 2].map((i) => {
      const b = takeBlock()
      data.copy(b, 0, i * POOL_BLOCK_SIZE, (i + 1) * POOL_BLOCK_SIZE)
      return b
    })
  const kept = fill()
  const plain = await buffer(Readable.from(kept).pipe(new ParallelGzip()))
  assert.ok(
    kept.every((b, i) => b.equals(data.subarray(i * POOL_BLOCK_SIZE, (i + 1) * POOL_BLOCK_SIZE))),
    "without recycleInput the blocks stay the caller's",
  )
  const given = fill()
  const recycled = await buffer(Readable.from(given).pipe(new ParallelGzip({ recycleInput: true })))
  await new Promise((r) => setImmediate(r))
  assert.ok(recycled.equals(plain))
  assert.ok(given.includes(takeBlock()), 'with recycleInput the blocks come back to the pool')
})
