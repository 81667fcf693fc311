/**
 * SIGINT/SIGTERM during commands that write into a layout (repack, insert): the command stops,
 * the temp file of the layer it was writing (`.upload.tmp-<pid>-*` in blobs/sha256) is removed,
 * one line says so, and the exit status is a shell's for the signal (130, 143). The layout is as
 * it was: index.json untouched. The registry behind it is src/io/cleanup.ts; copy's own
 * interruptions are in test/copy/interrupted-copy.test.ts.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { ladingOk, signalWhenFileAppears } from '../helpers/cli.js'
import { initImage } from '../fixtures/image.js'
import { tempDir, type AfterHook } from '../fixtures/temp.js'

/** Run the CLI and send `signal` as soon as a temp file appears in `watchDir`. */
function interruptOnTempFile(args: string[], watchDir: string, signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string; sent: boolean }> {
  return signalWhenFileAppears(args, watchDir, (name) => name.includes('.tmp-'), signal)
}

async function withImage(hook: AfterHook, fn: (dir: string, layoutDir: string) => Promise<void>): Promise<void> {
  const dir = tempDir(hook, { prefix: 'lading-interrupt-cli-' })
  const layoutDir = path.join(dir, 'img')
  await initImage(
    layoutDir,
    {
      layers: [
        [
          { name: 'etc/', type: 'directory' },
          { name: 'etc/hostname', body: 'x\n' },
        ],
      ],
    },
    't',
  )
  await fsp.writeFile(path.join(dir, 'big.bin'), randomBytes(64 * 1024 * 1024))
  await fn(dir, layoutDir)
}

async function assertLayoutAsItWas(layoutDir: string, indexBefore: string): Promise<void> {
  assert.equal(await fsp.readFile(path.join(layoutDir, 'index.json'), 'utf8'), indexBefore, 'index.json untouched')
  for (const d of [layoutDir, path.join(layoutDir, 'blobs', 'sha256')]) {
    assert.deepEqual(
      (await fsp.readdir(d)).filter((n) => n.includes('.tmp-')),
      [],
      `no temp file left in ${d}`,
    )
  }
  ladingOk(['validate', '--layout', layoutDir])
}

test('SIGINT during insert removes the layer being written, says so, exits 130', { timeout: 120_000 }, (t) =>
  withImage(t, async (dir, layoutDir) => {
    const indexBefore = await fsp.readFile(path.join(layoutDir, 'index.json'), 'utf8')
    const r = await interruptOnTempFile(
      ['insert', '--image', `${layoutDir}:t`, path.join(dir, 'big.bin'), '/big.bin'],
      path.join(layoutDir, 'blobs', 'sha256'),
      'SIGINT',
    )
    assert.ok(r.sent, `the insert was interrupted while writing (stderr: ${r.stderr})`)
    assert.equal(r.code, 130, r.stderr)
    assert.equal(r.stderr, 'lading: interrupted by SIGINT: removed 1 temporary file\n')
    await assertLayoutAsItWas(layoutDir, indexBefore)
  }),
)

test('SIGTERM during repack removes the layer being written, says so, exits 143', { timeout: 120_000 }, (t) =>
  withImage(t, async (dir, layoutDir) => {
    const bundle = path.join(dir, 'bundle')
    ladingOk(['unpack', '--image', `${layoutDir}:t`, bundle])
    await fsp.rename(path.join(dir, 'big.bin'), path.join(bundle, 'rootfs', 'big.bin'))
    const indexBefore = await fsp.readFile(path.join(layoutDir, 'index.json'), 'utf8')
    const r = await interruptOnTempFile(['repack', '--image', `${layoutDir}:t`, bundle], path.join(layoutDir, 'blobs', 'sha256'), 'SIGTERM')
    assert.ok(r.sent, `the repack was interrupted while writing (stderr: ${r.stderr})`)
    assert.equal(r.code, 143, r.stderr)
    assert.equal(r.stderr, 'lading: interrupted by SIGTERM: removed 1 temporary file\n')
    await assertLayoutAsItWas(layoutDir, indexBefore)
    // The bundle can still be repacked.
    ladingOk(['repack', '--image', `${layoutDir}:t`, bundle])
  }),
)
