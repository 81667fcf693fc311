import { test } from 'node:test'
import assert from 'node:assert/strict'
import { findTool, requireTool } from '../helpers/tools.js'

test('requireTool: present tools pass, missing tools skip locally and fail when CI=true', async (t) => {
  assert.ok(findTool('sh'), 'sh is on PATH')
  assert.equal(findTool('definitely-not-a-tool-lading'), undefined)
  const saved = process.env.CI
  try {
    delete process.env.CI
    let skipped: boolean | undefined
    await t.test('local: skipped with a reason', (st) => {
      skipped = !requireTool(st, 'definitely-not-a-tool-lading')
    })
    assert.equal(skipped, true)
    process.env.CI = 'true'
    assert.throws(() => requireTool(t, 'definitely-not-a-tool-lading'), /definitely-not-a-tool-lading not installed, and CI=true forbids skipping/)
    assert.equal(requireTool(t, 'sh'), true)
  } finally {
    if (saved === undefined) delete process.env.CI
    else process.env.CI = saved
  }
})
