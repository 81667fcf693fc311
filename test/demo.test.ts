/** The README's first Quick-start command keeps working: the built-in example walks an image's life. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { repoRoot } from './helpers/cli.js'

test('scripts/demo.sh runs the whole example and ends with a valid, unpacked image', { timeout: 300_000 }, () => {
  const r = spawnSync('bash', [path.join(repoRoot, 'scripts/demo.sh')], { encoding: 'utf8', env: { ...process.env, KEEP: '' } })
  assert.equal(r.status, 0, r.stderr + r.stdout.slice(-2000))
  for (const step of [
    'lading init',
    'lading new',
    'lading insert',
    'lading config',
    'lading stat',
    'lading validate',
    'lading build',
    'lading serve',
    'lading list-tags',
    'docker-archive:',
    'oci-archive:',
    'lading unpack',
  ])
    assert.ok(r.stdout.includes(step), `demo output lacks ${step}`)
  assert.match(r.stdout, /"Tags": \[\s*"1\.0",\s*"built"\s*\]/, 'both images pushed to the Lading registry')
  assert.match(r.stdout, /: valid \(/)
  assert.match(r.stdout, /rootfs\/app\/hello\.sh/)
  assert.match(r.stdout, /"\/app\/run"/)
  assert.match(r.stdout, /demo complete\s*$/)
})
