/**
 * The contract suite has teeth: run against a store whose put makes a blob visible before it
 * verified (test/store/contract/broken-blob-store.ts), in a child `node --test`, it must fail,
 * and fail exactly on the cases about visibility.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'contract', 'broken-blob-store.js')

test('the blob-store contract fails a store whose put makes a blob visible before it verified', () => {
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', fixture], {
    // Without NODE_TEST_CONTEXT: a child that inherits it reports to this runner, not on stdout.
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')), LADING_BROKEN_CONTRACT: '1' },
    encoding: 'utf8',
    timeout: 120_000,
  })
  const out = r.stdout
  const failed = [...out.matchAll(/^not ok \d+ - (.*)$/gm)].map((m) => m[1]!.trim())
  const passed = [...out.matchAll(/^ok \d+ - (.*)$/gm)].map((m) => m[1]!.trim())
  assert.notEqual(r.status, 0, 'the child run must fail')
  assert.match(out, /^# fail [1-9]/m)
  assert.deepEqual(failed.sort(), [
    'broken blob store: put with a wrong digest leaves nothing visible',
    'broken blob store: put with a wrong size leaves nothing visible',
  ])
  // The rest of the contract still passes: the suite singles out the bug, not the store.
  assert.ok(passed.length >= 9, `expected the other cases to pass, got: ${passed.join('; ')}`)
})
