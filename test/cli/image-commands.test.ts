/**
 * The umoci-style image commands end to end through the CLI: new, config, stat, inspect, cat,
 * and their agreement with umoci in both directions.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, readFileSync, mkdirSync, readdirSync } from 'node:fs'
import { createHash } from 'node:crypto'
import path from 'node:path'
import { lading, ladingOk, runOk } from '../helpers/cli.js'
import { requireTool } from '../helpers/tools.js'
import { tempDir } from '../fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-cli-' })

/** umoci re-serialises times the Go way (trailing zeros dropped), so compare instants, not strings. */
function sameInstants(history: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  return history.map((h) => (typeof h.created === 'string' ? { ...h, created: Date.parse(h.created) } : h))
}

function blob(layout: string, digest: string): Buffer {
  return readFileSync(path.join(layout, 'blobs', ...digest.split(':')))
}

test('new + config write a new config and manifest with a history entry, like umoci config', () => {
  const dir = path.join(tmp, 'a')
  ladingOk(['init', '--layout', dir])
  ladingOk(['new', '--image', `${dir}:t`, '--platform', 'linux/arm64/v8'])
  ladingOk([
    'config',
    '--image',
    `${dir}:t`,
    '--config.env',
    'A=1',
    '--config.env',
    'B=2',
    '--config.cmd',
    'sh',
    '--config.cmd',
    '-c',
    '--config.label',
    'x=y',
    '--config.exposedports',
    '8080',
    '--author',
    'me',
    '--manifest.annotation',
    'k=v',
    '--history.comment',
    'first',
  ])
  ladingOk(['config', '--image', `${dir}:t`, '--config.env', 'A=3', '--no-history', '--tag', 't2'])
  const st = JSON.parse(ladingOk(['stat', '--image', `${dir}:t`, '--json']).stdout)
  assert.equal(st.platform, 'linux/arm64/v8')
  assert.equal(st.history.length, 2)
  assert.equal(st.history[0].created_by, 'lading new')
  assert.ok(st.history[0].layer, 'new makes one (empty) layer')
  assert.equal(st.history[1].created_by, 'lading config')
  assert.equal(st.history[1].comment, 'first')
  assert.equal(st.history[1].author, 'me')
  assert.equal(st.history[1].empty_layer, true)
  const manifest = JSON.parse(blob(dir, st.manifest.digest).toString())
  assert.deepEqual(manifest.annotations, { k: 'v' })
  const config = JSON.parse(blob(dir, st.imageId).toString())
  assert.deepEqual(config.config.Env, ['A=1', 'B=2'])
  assert.deepEqual(config.config.Cmd, ['sh', '-c'])
  assert.deepEqual(config.config.ExposedPorts, { '8080/tcp': {} })
  // --tag wrote t2 and left t alone; --no-history added no entry.
  const st2 = JSON.parse(ladingOk(['stat', '--image', `${dir}:t2`, '--json']).stdout)
  assert.notEqual(st2.manifest.digest, st.manifest.digest)
  assert.equal(st2.history.length, 2)
  assert.deepEqual(JSON.parse(blob(dir, st2.imageId).toString()).config.Env, ['A=3', 'B=2'])
  const tags = ladingOk(['ls', '--layout', dir]).stdout.trim().split('\n').sort()
  assert.deepEqual(tags, ['t', 't2'])
})

test('new writes a manifest with one empty layer, so it passes the spec schema (oci-image-tool), and unpacks to an empty rootfs', (t) => {
  if (!requireTool(t, 'oci-image-tool')) return
  const dir = path.join(tmp, 'n')
  ladingOk(['init', '--layout', dir])
  ladingOk(['new', '--image', `${dir}:t`])
  const st = JSON.parse(ladingOk(['stat', '--image', `${dir}:t`, '--json']).stdout)
  const manifest = JSON.parse(blob(dir, st.manifest.digest).toString())
  assert.equal(manifest.layers.length, 1)
  // The empty tar is the two zero blocks that end an archive; its diff_id is their digest.
  assert.deepEqual(st.diffIds, ['sha256:' + createHash('sha256').update(Buffer.alloc(1024)).digest('hex')])
  for (const [type, digest] of [
    ['manifest', st.manifest.digest],
    ['config', st.imageId],
  ] as const) {
    const file = path.join(dir, 'blobs', ...digest.split(':'))
    runOk('oci-image-tool', ['validate', '--type', type, file])
  }
  runOk('oci-image-tool', ['validate', '--type', 'imageIndex', path.join(dir, 'index.json')])
  ladingOk(['validate', '--image', `${dir}:t`, '--deep'])
  const bundle = path.join(tmp, 'n-bundle')
  ladingOk(['unpack', '--image', `${dir}:t`, bundle])
  assert.deepEqual(readdirSync(path.join(bundle, 'rootfs')), [])
})

test('inspect --raw prints the stored manifest bytes; --config the config; cat verifies', () => {
  const dir = path.join(tmp, 'b')
  ladingOk(['init', '--layout', dir])
  ladingOk(['new', '--image', `${dir}:t`])
  const st = JSON.parse(ladingOk(['stat', '--image', `${dir}:t`, '--json']).stdout)
  const raw = ladingOk(['inspect', '--image', `${dir}:t`, '--raw']).stdoutBytes
  assert.equal('sha256:' + createHash('sha256').update(raw).digest('hex'), st.manifest.digest)
  const cfg = ladingOk(['inspect', '--image', `${dir}:t`, '--config']).stdoutBytes
  assert.equal('sha256:' + createHash('sha256').update(cfg).digest('hex'), st.imageId)
  const summary = JSON.parse(ladingOk(['inspect', '--image', `${dir}:t`]).stdout)
  assert.equal(summary.Digest, st.manifest.digest)
  assert.equal(summary.ImageId, st.imageId)
  assert.deepEqual(ladingOk(['cat', `${dir}@${st.imageId}`]).stdoutBytes, cfg)
  // A corrupted blob: cat fails with one line naming the digest mismatch.
  const p = path.join(dir, 'blobs', ...st.imageId.split(':'))
  const bytes = readFileSync(p)
  bytes.writeUInt8(bytes.readUInt8(5) ^ 1, 5)
  writeFileSync(p, bytes)
  const r = lading(['cat', `${dir}@${st.imageId}`])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^lading: .*digest mismatch/)
  assert.equal(r.stderr.trim().split('\n').length, 1)
})

test('bad input: one line and a non-zero exit, never a stack', () => {
  const cases: Array<[string[], number, RegExp]> = [
    [['stat', '--image', path.join(tmp, 'nope:t')], 1, /^lading: /],
    [['config', '--image', `${path.join(tmp, 'nope')}:t`, '--clear', 'bogus'], 1, /^lading: /],
    [['new', '--image', path.join(tmp, 'nope')], 2, /^lading: .*tag/],
    [['stat'], 2, /--image/],
    [['cat', 'no-digest-here'], 2, /^lading: expected DIR@DIGEST/],
    [['frobnicate'], 2, /unknown command/],
  ]
  for (const [args, status, re] of cases) {
    const r = lading(args)
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re, args.join(' '))
    assert.doesNotMatch(r.stderr, /\n\s+at /, `no stack trace for ${args.join(' ')}`)
  }
  const dir = path.join(tmp, 'c')
  ladingOk(['init', '--layout', dir])
  ladingOk(['new', '--image', `${dir}:t`])
  const r = lading(['config', '--image', `${dir}:t`, '--clear', 'bogus'])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /^lading: --clear: unknown key "bogus"/)
})

test('umoci reads what Lading wrote: umoci ls and umoci stat --json agree with lading', (t) => {
  if (!requireTool(t, 'umoci')) return
  const dir = path.join(tmp, 'd')
  ladingOk(['init', '--layout', dir])
  ladingOk(['new', '--image', `${dir}:t`])
  ladingOk(['config', '--image', `${dir}:t`, '--config.cmd', 'sh', '--history.comment', 'c1'])
  ladingOk(['tag', '--image', `${dir}:t`, 'u'])
  assert.deepEqual(runOk('umoci', ['ls', '--layout', dir]).stdout.trim().split('\n').sort(), ['t', 'u'])
  const theirs = JSON.parse(runOk('umoci', ['stat', '--image', `${dir}:t`, '--json']).stdout)
  const ours = JSON.parse(ladingOk(['stat', '--image', `${dir}:t`, '--json']).stdout)
  assert.deepEqual(sameInstants(ours.history), sameInstants(theirs.history))
})

test('Lading reads what umoci wrote: stat --json history equals umoci stat --json, with layers', (t) => {
  if (!requireTool(t, 'umoci')) return
  const dir = path.join(tmp, 'e')
  const bundle = path.join(tmp, 'e-bundle')
  runOk('umoci', ['init', '--layout', dir])
  runOk('umoci', ['new', '--image', `${dir}:t`])
  runOk('umoci', ['unpack', '--image', `${dir}:t`, bundle])
  mkdirSync(path.join(bundle, 'rootfs/etc'), { recursive: true })
  writeFileSync(path.join(bundle, 'rootfs/etc/hello'), 'hello\n')
  runOk('umoci', ['repack', '--image', `${dir}:t`, '--history.comment', 'added hello', bundle])
  runOk('umoci', ['config', '--image', `${dir}:t`, '--config.env', 'X=1', '--tag', 'v2'])
  assert.deepEqual(ladingOk(['ls', '--layout', dir]).stdout.trim().split('\n').sort(), runOk('umoci', ['ls', '--layout', dir]).stdout.trim().split('\n').sort())
  for (const tag of ['t', 'v2']) {
    const theirs = JSON.parse(runOk('umoci', ['stat', '--image', `${dir}:${tag}`, '--json']).stdout)
    const ours = JSON.parse(ladingOk(['stat', '--image', `${dir}:${tag}`, '--json']).stdout)
    assert.deepEqual(sameInstants(ours.history), sameInstants(theirs.history), tag)
    assert.equal(ours.history.filter((h: { layer: unknown }) => h.layer).length, 1)
  }
})
