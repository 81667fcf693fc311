/**
 * Issue 10 item 16: unpack, repack and validate show progress per layer as copy does (the one printer,
 * src/cli/progress.ts): redrawn in place on a terminal (forced here with --progress tty), lines
 * with --progress plain, JSON events with --progress json, and nothing in a pipe by default.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { lading, ladingOk } from '../helpers/cli.js'
import { initImage, type StoredImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-long-progress-' })
const dir = path.join(tmp, 'L')
let img: StoredImage
before(async () => {
  img = await initImage(dir, { layerBytes: 200_000 }, 't')
})

const short = (d: string): string => d.slice(7, 19)

test('regression: unpack shows progress per layer with --progress plain, and nothing in a pipe by default', () => {
  const plain = ladingOk(['unpack', '--rootless', '--progress', 'plain', '--image', `${dir}:t`, path.join(tmp, 'b1')])
  for (const l of img.layers) {
    assert.match(plain.stderr, new RegExp(`Unpacking blob sha256:${short(l.digest)} \\(`))
    assert.match(plain.stderr, new RegExp(`Unpacked blob sha256:${short(l.digest)} in `))
  }
  const piped = ladingOk(['unpack', '--rootless', '--image', `${dir}:t`, path.join(tmp, 'b2')])
  assert.equal(piped.stderr, '', 'quiet in a pipe')
  const tty = ladingOk(['unpack', '--rootless', '--progress', 'tty', '--image', `${dir}:t`, path.join(tmp, 'b3')])
  assert.match(tty.stderr, /\x1b\[2K\r/, 'drawn in place')
  assert.match(tty.stderr, /unpacking|done/)
})

test('regression: validate shows progress per blob hashed (json events), and nothing in a pipe by default', () => {
  const json = ladingOk(['validate', '--progress', 'json', '--image', `${dir}:t`])
  const events = json.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; digest?: string; action?: string })
  for (const l of img.layers) {
    assert.ok(
      events.some((e) => e.type === 'blob-start' && e.digest === l.digest && e.action === 'verify'),
      json.stderr,
    )
    assert.ok(
      events.some((e) => e.type === 'blob-done' && e.digest === l.digest),
      json.stderr,
    )
  }
  assert.match(json.stdout, /valid/)
  const deep = ladingOk(['validate', '--deep', '--progress', 'plain', '--layout', dir])
  assert.match(deep.stderr, /Verifying blob sha256:/)
  const piped = ladingOk(['validate', '--layout', dir])
  assert.equal(piped.stderr, '')
  assert.equal(ladingOk(['validate', '--progress', 'none', '--layout', dir]).stderr, '')
})

test('regression: repack shows the new layer being written with --progress plain, and nothing in a pipe by default', () => {
  const bundle = path.join(tmp, 'rb')
  ladingOk(['unpack', '--rootless', '--image', `${dir}:t`, bundle])
  writeFileSync(path.join(bundle, 'rootfs', 'added.txt'), 'x'.repeat(100_000))
  const r = ladingOk(['repack', '--progress', 'plain', '--refresh-bundle', '--image', `${dir}:t`, bundle])
  assert.match(r.stderr, /^Writing new layer\nWrote new layer as sha256:[0-9a-f]{12} \([0-9.]+ [kM]?B\) in [0-9.]+s\n$/)
  writeFileSync(path.join(bundle, 'rootfs', 'more.txt'), 'y')
  const piped = ladingOk(['repack', '--image', `${dir}:t`, bundle])
  assert.equal(piped.stderr, '')
})

test('--progress with a bad value is a usage error', () => {
  for (const cmd of [
    ['validate', '--layout', dir],
    ['unpack', '--image', `${dir}:t`, path.join(tmp, 'never')],
    ['repack', '--image', `${dir}:t`, path.join(tmp, 'never')],
  ]) {
    const r = lading([...cmd, '--progress', 'fancy'])
    assert.equal(r.status, 2, r.stderr)
    assert.match(r.stderr, /^lading: --progress: expected tty, plain, json or none, got "fancy"\n$/)
  }
})
