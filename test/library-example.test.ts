/**
 * The README's Library section shows a whole program (copy, edit a config, append a layer, push).
 * This test takes that block out of README.md as it stands and runs it, unchanged, as a program
 * that imports Lading by its package name (node_modules/lading links to this checkout, as an
 * installed dependency would be), against a real docker-registry. Then it reads the pushed image
 * back through the library and checks what the program claims to have done.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, test } from 'node:test'
import { repoRoot } from './helpers/cli.js'
import { registryMissing, startRegistry, type RunningRegistry } from './helpers/registry.js'
import { seeImage } from './copy/inspect.js'
import { tempDir } from './fixtures/temp.js'
import { initImage, type StoredImage } from './fixtures/image.js'

const MARKER = '<!-- library-example: test/library-example.test.ts runs this block -->'

/** The fenced block right after the marker; fails (rather than skips) if the README lost it. */
export async function readmeExample(): Promise<string> {
  const readme = await fsp.readFile(path.join(repoRoot, 'README.md'), 'utf8')
  const at = readme.indexOf(MARKER)
  assert.ok(at >= 0, `README.md has no ${MARKER}`)
  const m = /^```js\n([\s\S]*?)^```$/m.exec(readme.slice(at + MARKER.length))
  assert.ok(m, 'README.md: no ```js block after the library-example marker')
  return m[1]!
}

const missing = registryMissing()
const tmp = tempDir({ after }, { prefix: 'lading-library-example-' })
let img: StoredImage
let registry: RunningRegistry | undefined

before(async () => {
  img = await initImage(path.join(tmp, 'images'), {}, 'base')
  if (!missing) registry = await startRegistry()
})
after(async () => {
  await registry?.stop()
})

test("the README's library program copies, edits, appends a layer and pushes", { skip: missing }, async () => {
  const program = path.join(tmp, 'app', 'edit-and-push.mjs')
  await fsp.mkdir(path.join(tmp, 'app', 'node_modules'), { recursive: true })
  await fsp.symlink(repoRoot, path.join(tmp, 'app', 'node_modules', 'lading'))
  await fsp.writeFile(program, await readmeExample())
  const to = `docker://${registry!.host}/example/app:edited`
  const { stdout } = await promisify(execFile)(process.execPath, [program, `oci:${path.join(tmp, 'images')}:base`, to], {
    cwd: path.join(tmp, 'app'),
    env: { ...process.env, TLS_VERIFY: 'false', TMPDIR: tmp },
  })
  const pushed = /^pushed (sha256:[0-9a-f]{64})\n$/.exec(stdout)
  assert.ok(pushed, `the program printed ${JSON.stringify(stdout)}`)

  const seen = await seeImage(to, { tlsVerify: false })
  assert.equal(seen.manifestDigest, pushed[1])
  // One layer more than the base, the base's diff_ids unchanged below it.
  assert.equal(seen.layers.length, img.layers.length + 1)
  assert.deepEqual(seen.diffIds.slice(0, -1), img.diffIds)
  const config = JSON.parse(seen.configBytes) as { config?: { Env?: string[] }; history?: Array<{ created_by?: string }> }
  assert.ok(config.config?.Env?.includes('GREETING=hello'), `Env: ${JSON.stringify(config.config?.Env)}`)
  assert.equal(config.history?.at(-1)?.created_by, 'edit-and-push: add /etc/greeting')
  // The program cleaned up its work layout.
  assert.deepEqual(
    (await fsp.readdir(tmp)).filter((n) => n.startsWith('edit-and-push-')),
    [],
  )
})
