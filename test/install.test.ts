/**
 * Library installs stay light: the native gzip addon (native/, scripts/build-native.sh) and the
 * CLI's start-up snapshot (scripts/build-snapshot.sh) are optional, and zstd-napi is an optional
 * dependency. This stages the package as an installed dependency (node_modules/lading, the
 * files package.json "files" lists, zstd-napi absent), runs its npm "install" script with no
 * working compiler (CC=CXX=false) and CI=true (a consumer's CI), and checks that the install
 * succeeds and a program importing the library compresses gzip through Node's zlib; and that each
 * addon builds without the library of another.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { repoRoot } from './helpers/cli.js'
import { tempDir } from './fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-install-' })
const app = path.join(tmp, 'app')
const pkg = path.join(app, 'node_modules', 'lading')

before(async () => {
  await fsp.mkdir(pkg, { recursive: true })
  const files = [
    'package.json',
    'scripts/build-native.sh',
    'scripts/build-snapshot.sh',
    'native/binding.gyp',
    'native/gzip_member.c',
    'native/inflate.c',
    'native/mount.c',
    'build/src',
  ]
  for (const f of files)
    await fsp.cp(path.join(repoRoot, f), path.join(pkg, f), { recursive: true, filter: (s) => !/lading\.(cjs|blob)/.test(path.basename(s)) })
  // The package's dependencies beside it, as npm lays them out; the optional zstd-napi left out.
  for (const dep of await fsp.readdir(path.join(repoRoot, 'node_modules'))) {
    if (dep === 'zstd-napi' || dep.startsWith('.')) continue
    await fsp.symlink(path.join(repoRoot, 'node_modules', dep), path.join(app, 'node_modules', dep))
  }
})

/** The package's npm "install" script, as npm runs it (sh -c, in the package's directory). */
const installScript = (): string => (JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { scripts: { install: string } }).scripts.install

test('npm install of the package succeeds without a compiler, also under CI=true', () => {
  const script = installScript()
  const env: NodeJS.ProcessEnv = { ...process.env, CC: 'false', CXX: 'false', CI: 'true' }
  delete env.LADING_REQUIRE_NATIVE
  delete env.LADING_REQUIRE_SNAPSHOT
  const r = spawnSync('sh', ['-c', script], { cwd: pkg, env, encoding: 'utf8', timeout: 300_000 })
  assert.equal(r.status, 0, `install failed: ${r.stderr}`)
  assert.equal(existsSync(path.join(pkg, 'native/build/Release/lading_gzip.node')), false, 'no addon was built')
  // Without the compiler the build fails (with libdeflate-dev) or is not tried (without): a note.
  assert.match(r.stderr, /^lading: (building native\/ failed|note: libdeflate-dev is not installed)/m)
})

test('the same install is strict with LADING_REQUIRE_NATIVE=1 (what a project CI that needs the fast path sets)', () => {
  const script = installScript()
  const r = spawnSync('sh', ['-c', script], {
    cwd: pkg,
    env: { ...process.env, CC: 'false', CXX: 'false', LADING_REQUIRE_NATIVE: '1' },
    encoding: 'utf8',
    timeout: 300_000,
  })
  assert.equal(r.status, 1, r.stderr)
})

test('a program importing the installed library compresses gzip with zlib; zstd without zstd-napi is one clear error', async () => {
  const program = path.join(app, 'main.mjs')
  await fsp.writeFile(
    program,
    `
import { Readable } from 'node:stream'
import { compress, decompress } from 'lading/io'
import { nativeGzipUnavailableReason } from './node_modules/lading/build/src/io/native-gzip.js'
const input = Buffer.alloc(1 << 20, 'lading ')
const chunks = []
for await (const c of await decompress(compress(Readable.from([input]), 'gzip'), 'gzip')) chunks.push(c)
let zstd
try { for await (const _ of compress(Readable.from([input]), 'zstd')) {} zstd = 'worked' } catch (e) { zstd = e.code + ': ' + e.message }
console.log(JSON.stringify({ roundTrip: Buffer.concat(chunks).equals(input), native: nativeGzipUnavailableReason() ?? null, zstd }))
`,
  )
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.LADING_GZIP
  const r = spawnSync(process.execPath, [program], { cwd: app, env, encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { roundTrip: boolean; native: string | null; zstd: string }
  assert.equal(out.roundTrip, true)
  assert.notEqual(out.native, null, 'the native encoder is not in use: gzip came from zlib')
  assert.match(out.zstd, /^UNSUPPORTED: zstd needs the optional package zstd-napi/)
})

test('each native addon builds on its own: without libisal (have_isal=0) the encoder and mount addons build and gzip decodes with zlib', async () => {
  // The last test here: it leaves addons built in the staged package. GYP_DEFINES overrides
  // native/binding.gyp's look for the ISA-L header, as if libisal-dev were not installed.
  const env: NodeJS.ProcessEnv = { ...process.env, GYP_DEFINES: 'have_isal=0' }
  delete env.CI
  delete env.LADING_REQUIRE_NATIVE
  delete env.LADING_GZIP
  delete env.LADING_GUNZIP
  const b = spawnSync('bash', ['scripts/build-native.sh'], { cwd: pkg, env, encoding: 'utf8', timeout: 300_000 })
  assert.equal(b.status, 0, b.stderr)
  const built = (name: string): boolean => existsSync(path.join(pkg, `native/build/Release/${name}.node`))
  if (existsSync('/usr/include/libdeflate.h')) assert.ok(built('lading_gzip'), 'the libdeflate encoder built')
  assert.ok(built('lading_mount'), 'the mount addon built')
  assert.equal(built('lading_inflate'), false, 'no ISA-L decoder without the library')
  const program = path.join(app, 'gunzip.mjs')
  await fsp.writeFile(
    program,
    `
import { Readable } from 'node:stream'
import zlib from 'node:zlib'
import { decompress } from 'lading/io'
import { nativeGunzipUnavailableReason } from './node_modules/lading/build/src/io/native-gunzip.js'
const input = Buffer.alloc(1 << 20, 'lading ')
const chunks = []
for await (const c of await decompress(Readable.from([zlib.gzipSync(input)]), 'gzip')) chunks.push(c)
console.log(JSON.stringify({ roundTrip: Buffer.concat(chunks).equals(input), reason: nativeGunzipUnavailableReason() ?? null }))
`,
  )
  const r = spawnSync(process.execPath, [program], { cwd: app, env, encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { roundTrip: boolean; reason: string | null }
  assert.equal(out.roundTrip, true)
  assert.match(out.reason ?? '', /lading_inflate\.node/, 'the decoder is absent, so gzip came from zlib')
})
