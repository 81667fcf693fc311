/**
 * Node exits with status 0 when its event loop is empty, even while a command still awaits a
 * promise that can no longer settle. The CLI must report that as an internal error (status 1),
 * never let it pass as success.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { tempDir } from '../fixtures/temp.js'
import { cliPath, ladingOk } from '../helpers/cli.js'

test('a command left awaiting a promise that never settles exits 1 with one line, not 0', (t) => {
  const tmp = tempDir(t, { prefix: 'lading-unsettled-' })
  const layout = path.join(tmp, 'layout')
  ladingOk(['init', '--layout', layout])
  // Every asynchronous lstat from here on waits forever (and keeps nothing alive); gc's walk of
  // the blob directories starts with one.
  const hook = `import { promises } from 'node:fs'; promises.lstat = () => new Promise(() => {})`
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, cliPath, 'gc', '--layout', layout], {
    encoding: 'utf8',
    env: { ...process.env, LADING_DEBUG: '' },
  })
  assert.equal(r.status, 1, r.stderr)
  assert.match(r.stderr, /^lading: internal error: the command stopped before it finished.*\n$/)
})
