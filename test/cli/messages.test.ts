/**
 * Issue 10 item 15: messages say what is true. A conflict between the user's own flags is named
 * as such (not blamed on the source); hostile long names are shortened (one helper, quoteName);
 * numbers beyond double range are not "null"; `tag` prints what it did, as new/config/insert do;
 * `repack` warns when the tag moved since `unpack`. ("decompressing", not "recompressing", is in
 * test/copy/skopeo-flags.test.ts.)
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { isLadingError, quoteName } from '../../src/errors.js'
import { parseManifest } from '../../src/spec/parse.js'
import { lading, ladingOk } from '../helpers/cli.js'
import { applySpecs } from '../layer/helpers/apply-env.js'
import { tempDir } from '../fixtures/temp.js'
import { initImage } from '../fixtures/image.js'

const tmp = tempDir({ after }, { prefix: 'lading-messages-' })

test("regression: a zstd conflict between the user's own flags is named as theirs, not blamed on the source", async () => {
  await initImage(path.join(tmp, 'src'), {}, 't')
  const r = lading(['copy', '--format', 'v2s2', '--dest-compress-format', 'zstd', `oci:${path.join(tmp, 'src')}:t`, `dir:${path.join(tmp, 'zstd-v2s2')}`])
  assert.equal(r.status, 2, r.stderr)
  assert.equal(r.stderr, 'lading: --dest-compress-format zstd and --format v2s2 conflict: Docker v2 schema 2 has no zstd layer type\n')
})

test('regression: quoteName shortens hostile long names and says how long they were', () => {
  assert.equal(quoteName('etc/passwd'), '"etc/passwd"')
  assert.equal(quoteName('a\nb'), '"a\\nb"')
  const long = `${'a'.repeat(5000)}/x`
  const q = quoteName(long)
  assert.ok(q.length < 200, q)
  assert.match(q, /^"a{100}"…"a{38}\/x" \(5002 characters\)$/)
  // A cut never splits a character or an escape.
  const emoji = quoteName('\u{1F600}'.repeat(300))
  assert.doesNotThrow(() => JSON.parse(emoji.slice(0, emoji.indexOf('…'))))
})

test('regression: a layer entry with a 5000-character name gives a short error line', async (t) => {
  const name = `${'a'.repeat(5000)}/../../../escape`
  await assert.rejects(applySpecs(tempDir(t, { prefix: 'lading-apply-' }), [{ name: 'placeholder', pax: { path: name }, data: 'x' }]), (e: unknown) => {
    assert.ok(isLadingError(e), String(e))
    assert.ok(e.message.length < 600, `${e.message.length} characters: ${e.message.slice(0, 300)}`)
    assert.match(e.message, /\(5016 characters\)/)
    return true
  })
})

test('regression: size 1e400 is reported as a number too large, not as null', () => {
  const doc = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:${'a'.repeat(64)}","size":1e400},"layers":[]}`
  assert.throws(
    () => parseManifest(Buffer.from(doc), 'm'),
    (e: unknown) => {
      assert.ok(isLadingError(e))
      assert.match(e.message, /\/config\/size: size must be a non-negative integer, got a number too large to represent/)
      assert.doesNotMatch(e.message, /got null/)
      return true
    },
  )
  // Through the CLI too.
  const f = path.join(tmp, 'm.json')
  writeFileSync(f, doc)
  const r = lading(['validate', '--type', 'manifest', f])
  assert.equal(r.status, 1)
  assert.match(r.stdout + r.stderr, /too large to represent/)
})

test('regression: tag prints the tag and digest, as new, config and insert do', () => {
  const dir = path.join(tmp, 'L')
  ladingOk(['init', '--layout', dir])
  const made = ladingOk(['new', '--image', `${dir}:a`]).stdout
  const digest = made.trim().split(' ')[1]!
  assert.match(digest, /^sha256:[0-9a-f]{64}$/)
  assert.equal(ladingOk(['tag', '--image', `${dir}:a`, 'b']).stdout, `${dir}:b ${digest}\n`)
  const configured = ladingOk(['config', '--image', `${dir}:b`, '--config.env', 'A=1']).stdout
  assert.match(configured, new RegExp(`^${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:b sha256:[0-9a-f]{64}\\n$`))
})

test('regression: repack warns that the tag moved since unpack', async (t) => {
  const dir = path.join(tmp, 'R')
  ladingOk(['init', '--layout', dir])
  ladingOk(['new', '--image', `${dir}:t`])
  const bundle = path.join(tmp, 'bundle')
  const u = lading(['unpack', '--rootless', '--image', `${dir}:t`, bundle])
  if (u.status !== 0) {
    t.skip(`unpack failed here: ${u.stderr}`)
    return
  }
  // Someone else moves the tag.
  ladingOk(['config', '--image', `${dir}:t`, '--config.env', 'MOVED=1'])
  writeFileSync(path.join(bundle, 'rootfs', 'new-file'), 'x')
  const r = ladingOk(['repack', '--image', `${dir}:t`, bundle])
  assert.match(
    r.stderr,
    /^lading: warning: t moved since unpack \(to sha256:[0-9a-f]{12}\); the new image is based on sha256:[0-9a-f]{12}, as unpacked, and replaces it\n$/,
  )
  // No warning when the tag did not move.
  writeFileSync(path.join(bundle, 'rootfs', 'another'), 'y')
  const again = ladingOk(['repack', '--refresh-bundle', '--image', `${dir}:t`, bundle])
  const third = (writeFileSync(path.join(bundle, 'rootfs', 'third'), 'z'), ladingOk(['repack', '--image', `${dir}:t`, bundle]))
  assert.doesNotMatch(third.stderr, /moved since unpack/, again.stderr)
})
