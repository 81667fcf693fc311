/**
 * Issue 10 item 10: tags containing '/' or ':' (valid ref.names, image-spec annotations.md) work
 * everywhere a layout image is named. `--image DIR:TAG` and `oci:DIR:TAG` share one rule: the
 * directory ends at the FIRST colon, as umoci splits --image and skopeo splits oci: references.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { parseImageArg } from '../../src/cli/util.js'
import { parseReference } from '../../src/transport/reference.js'
import { isLadingError } from '../../src/errors.js'
import { lading, ladingOk, runOk } from '../helpers/cli.js'
import { requireTool } from '../helpers/tools.js'
import { tempDir } from '../fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-image-arg-' })

const DIGEST = `sha256:${'a'.repeat(64)}`

test('regression: --image splits DIR:TAG at the first colon, so tags may hold / and :', () => {
  assert.deepEqual(parseImageArg('./L:a/b:c'), { dir: './L', tag: 'a/b:c' })
  assert.deepEqual(parseImageArg('/x/L:v1:rc'), { dir: '/x/L', tag: 'v1:rc' })
  assert.deepEqual(parseImageArg('L'), { dir: 'L', tag: 'latest' })
  assert.deepEqual(parseImageArg('L', null), { dir: 'L' })
  assert.deepEqual(parseImageArg(`L@${DIGEST}`), { dir: 'L', digest: DIGEST })
  assert.deepEqual(parseImageArg(`L:@${DIGEST}`), { dir: 'L', digest: DIGEST })
  // Same split as the oci: transport.
  const r = parseReference('oci:./L:a/b:c')
  assert.deepEqual(r, { transport: 'oci', dir: './L', tag: 'a/b:c' })
  for (const bad of ['L:', 'L:bad tag', ':t', 'L:a//b']) {
    assert.throws(
      () => parseImageArg(bad),
      (e: unknown) => isLadingError(e, 'USAGE') && e.message.startsWith(`--image ${JSON.stringify(bad)}: `),
      bad,
    )
  }
})

test('regression: a tag with / and : made by `tag` is usable by every --image command and by oci: copies', () => {
  const dir = path.join(tmp, 'L')
  ladingOk(['init', '--layout', dir])
  ladingOk(['new', '--image', `${dir}:base`])
  ladingOk(['tag', '--image', `${dir}:base`, 'team/app:v1'])
  const st = JSON.parse(ladingOk(['stat', '--image', `${dir}:team/app:v1`, '--json']).stdout)
  const base = JSON.parse(ladingOk(['stat', '--image', `${dir}:base`, '--json']).stdout)
  assert.equal(st.manifest.digest, base.manifest.digest)
  ladingOk(['config', '--image', `${dir}:team/app:v1`, '--config.env', 'A=1'])
  const after1 = JSON.parse(ladingOk(['stat', '--image', `${dir}:team/app:v1`, '--json']).stdout)
  assert.notEqual(after1.manifest.digest, base.manifest.digest, 'config moved the tag team/app:v1')
  ladingOk(['inspect', '--image', `${dir}:team/app:v1`])
  const dest = path.join(tmp, 'L2')
  ladingOk(['copy', '-q', `oci:${dir}:team/app:v1`, `oci:${dest}:x/y:z`])
  assert.deepEqual(ladingOk(['ls', '--layout', dest]).stdout.trim().split('\n'), ['x/y:z'])
  ladingOk(['rm', '--image', `${dir}:team/app:v1`])
  assert.equal(lading(['stat', '--image', `${dir}:team/app:v1`]).status, 1)
})

test('regression: --image with / and : in the tag agrees with umoci in both directions', (t) => {
  if (!requireTool(t, 'umoci')) return
  const dir = path.join(tmp, 'U')
  runOk('umoci', ['init', '--layout', dir])
  runOk('umoci', ['new', '--image', `${dir}:u/v:w`])
  ladingOk(['stat', '--image', `${dir}:u/v:w`])
  ladingOk(['tag', '--image', `${dir}:u/v:w`, 'a/b:c'])
  runOk('umoci', ['stat', '--image', `${dir}:a/b:c`])
  assert.deepEqual(runOk('umoci', ['ls', '--layout', dir]).stdout.trim().split('\n').sort(), ['a/b:c', 'u/v:w'])
})
