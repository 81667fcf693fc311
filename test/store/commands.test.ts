/** The store commands through the CLI: init, ls, tag, rm, gc; their errors and exit codes. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { Layout } from '../../src/store/layout.js'
import { cliPath, lading, ladingOk } from '../helpers/cli.js'
import { putImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

test('init, ls, tag, rm and gc work together and print what umoci prints', async (t) => {
  const tmpDir = tempDir(t)
  const dir = path.join(tmpDir, 'l')
  ladingOk(['init', '--layout', dir])
  ladingOk(['init', '--layout', dir])
  assert.equal(ladingOk(['ls', '--layout', dir]).stdout, '')
  const layout = await Layout.open(dir)
  const img = await putImage(layout, { layers: 2 })
  await layout.setTag('a', img.manifest)
  ladingOk(['tag', '--image', `${dir}:a`, 'b'])
  ladingOk(['tag', '--image', `${dir}@${img.manifest.digest}`, 'by-digest'])
  // Without :TAG the source is "latest", as in umoci.
  assert.match(lading(['tag', '--image', dir, 'c']).stderr, /tag "latest" not found/)
  ladingOk(['tag', '--image', `${dir}:b`, 'c'])
  assert.equal(ladingOk(['ls', '--layout', dir]).stdout, 'a\nb\nby-digest\nc\n')
  const json = JSON.parse(ladingOk(['ls', '--layout', dir, '--json']).stdout) as Array<{ tag: string; digest: string; mediaType: string; size: number }>
  assert.deepEqual(
    json.map((x) => x.tag),
    ['a', 'b', 'by-digest', 'c'],
  )
  assert.ok(json.every((x) => x.digest === img.manifest.digest && x.size === img.manifest.size))
  ladingOk(['rm', '--image', `${dir}:a`])
  ladingOk(['rm', '--image', `${dir}:b`])
  ladingOk(['rm', '--image', `${dir}:by-digest`])
  assert.equal(ladingOk(['gc', '--layout', dir]).stdout, 'removed 0 blobs (0 B) and 0 temp files (0 B)\n')
  ladingOk(['rm', '--image', `${dir}:c`])
  const gc = ladingOk(['gc', '--layout', dir]).stdout
  assert.match(gc, new RegExp(`^removed ${img.manifest.digest} \\(${img.manifest.size} B\\)$`, 'm'))
  assert.match(gc, /^removed 4 blobs \([\d.]+ (B|kB)\) and 0 temp files \(0 B\)$/m)
  assert.deepEqual(await fsp.readdir(path.join(dir, 'blobs', 'sha256')), [])
})

test('errors: one line, exit 1; usage errors exit 2', async (t) => {
  const tmpDir = tempDir(t)
  const dir = path.join(tmpDir, 'l')
  await fsp.mkdir(path.join(tmpDir, 'junk'))
  await fsp.writeFile(path.join(tmpDir, 'junk', 'x'), '')
  let r = lading(['init', '--layout', path.join(tmpDir, 'junk')])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^lading: .*junk: directory is not empty and is not an OCI layout/)
  r = lading(['ls', '--layout', path.join(tmpDir, 'junk')])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^lading: .*not an OCI image layout: oci-layout is missing\n$/)
  r = lading(['ls'])
  assert.equal(r.status, 2)
  ladingOk(['init', '--layout', dir])
  const layout = await Layout.open(dir)
  await layout.setTag('a', (await putImage(layout, { layers: 1 })).manifest)
  r = lading(['tag', '--image', `${dir}:a`, 'bad tag'])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^lading: invalid tag "bad tag"/)
  r = lading(['tag', '--image', `${dir}:missing`, 'x'])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /^lading: tag "missing" not found in layout .* \(tags: a\)/)
  r = lading(['rm', '--image', `${dir}:missing`])
  assert.equal(r.status, 1)
  r = lading(['rm', '--image', `${dir}@sha256:${'0'.repeat(64)}`])
  assert.equal(r.status, 2)
  r = lading(['gc', '--layout', dir, '--keep-recent', 'soon'])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /invalid duration/)
  assert.equal(lading(['gc', '--layout', dir, '--keep-recent', '10m']).status, 0)
})

// The plain-module start (bin/lading without a snapshot, LADING_SNAPSHOT=0) loads modules as commands need them.
test('lading ls keeps a tiny import graph: no registry, zstd, tar or layer code is loaded', async (t) => {
  const tmpDir = tempDir(t)
  const dir = path.join(tmpDir, 'l')
  ladingOk(['init', '--layout', dir])
  const log = path.join(tmpDir, 'loaded.txt')
  const hooks = path.join(tmpDir, 'hooks.mjs')
  await fsp.writeFile(
    hooks,
    `
    import { appendFileSync } from 'node:fs'
    export async function load(url, context, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, context) }
  `,
  )
  const register = path.join(tmpDir, 'register.mjs')
  await fsp.writeFile(register, `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)})`)
  const r = lading(['ls', '--layout', dir], { env: { LADING_SNAPSHOT: '0', NODE_OPTIONS: `--import ${pathToFileURL(register).href}` } })
  assert.equal(r.status, 0, r.stderr)
  const loaded = (await fsp.readFile(log, 'utf8')).split('\n').filter(Boolean)
  assert.ok(
    loaded.some((u) => u.endsWith('/store/layout.js')),
    'the hook saw the modules',
  )
  // extra-ca.js (no imports but node:fs) is how every command takes NODE_EXTRA_CA_CERTS back at start.
  const heavy = loaded.filter(
    (u) => /zstd|tar-stream|\/src\/layer\/|\/src\/transport\/|\/src\/copy\//.test(u) && !u.endsWith('/transport/registry/extra-ca.js'),
  )
  assert.deepEqual(heavy, [], `ls loaded heavy modules (through ${path.relative(process.cwd(), cliPath)})`)
})
