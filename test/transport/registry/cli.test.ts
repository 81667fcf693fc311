/**
 * The registry commands as a user runs them: login (verified, stored 0600), list-tags (skopeo's
 * JSON), delete (tag resolved to digest), logout; wrong passwords and bad arguments are one
 * line on stderr with exit status 1 (2 for usage).
 */
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { RegistryClient } from '../../../src/transport/registry/client.js'
import { startRegistry, registryAvailable, type RunningRegistry } from '../../helpers/registry.js'
import { spawnSync } from 'node:child_process'
import { cliPath, lading } from '../../helpers/cli.js'
import { requireTool } from '../../helpers/tools.js'
import { makeImage, stream } from '../../fixtures/image.js'
import { tempDir } from '../../fixtures/temp.js'

const skip = registryAvailable() ? false : process.env.CI === 'true' ? false : 'docker-registry not installed'

describe('lading login / list-tags / delete / logout', { skip }, () => {
  let reg: RunningRegistry
  const tmp = tempDir({ after }, { prefix: 'lading-cli-reg-' })
  let authFile: string
  let env: NodeJS.ProcessEnv
  before(async () => {
    reg = await startRegistry({ htpasswd: [{ username: 'alice', password: 'pa55' }] })
    authFile = path.join(tmp, 'auth', 'auth.json')
    env = { HOME: tmp, REGISTRY_AUTH_FILE: '', XDG_RUNTIME_DIR: '', DOCKER_CONFIG: '' }
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false, creds: { username: 'alice', password: 'pa55' } })
    try {
      for (const [tags, size] of [
        [['a', 'b'], 100],
        [['c', 'd', 'e'], 200],
      ] as const) {
        const img = makeImage({ layers: [size] })
        for (const b of [img.config, ...img.layers]) await c.putBlob('cli/app', stream(b.bytes), b.desc)
        for (const t of tags) await c.putManifest('cli/app', t, img.manifest)
      }
    } finally {
      await c.close()
    }
  })
  after(async () => {
    await reg?.stop()
  })

  test('login with a wrong password: one line, exit 1, nothing stored', async () => {
    const r = lading(['login', reg.host, '-u', 'alice', '-p', 'wrong', '--tls-verify=false', '--authfile', authFile], { env })
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, /^lading: docker:\/\/127\.0\.0\.1:\d+: GET \/v2\/: UNAUTHORIZED: wrong username or password\n$/)
    await assert.rejects(fsp.stat(authFile), { code: 'ENOENT' })
  })

  test('list-tags without credentials: UNAUTHORIZED in one line', () => {
    const r = lading(['list-tags', `docker://${reg.host}/cli/app`, '--tls-verify=false', '--authfile', authFile], { env })
    assert.equal(r.status, 1)
    assert.match(r.stderr, /^lading: .*UNAUTHORIZED.*\n$/)
  })

  test('login --password-stdin stores the credentials (mode 0600); list-tags and delete use them', async () => {
    const r = lading(['login', reg.host, '-u', 'alice', '--password-stdin', '--tls-verify=false', '--authfile', authFile], { env, input: 'pa55\n' })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'Login Succeeded!\n')
    assert.equal((await fsp.stat(authFile)).mode & 0o777, 0o600)
    const stored = JSON.parse(await fsp.readFile(authFile, 'utf8'))
    assert.equal(Buffer.from(stored.auths[reg.host].auth, 'base64').toString(), 'alice:pa55')

    const list = lading(['list-tags', `docker://${reg.host}/cli/app`, '--tls-verify=false', '--authfile', authFile], { env })
    assert.equal(list.status, 0, list.stderr)
    const out = JSON.parse(list.stdout)
    assert.equal(out.Repository, `${reg.host}/cli/app`)
    assert.deepEqual([...out.Tags].sort(), ['a', 'b', 'c', 'd', 'e'])

    const del = lading(['delete', `docker://${reg.host}/cli/app:a`, '--tls-verify=false', '--authfile', authFile], { env })
    assert.equal(del.status, 0, del.stderr)
    const after = JSON.parse(lading(['list-tags', `docker://${reg.host}/cli/app`, '--tls-verify=false', '--authfile', authFile], { env }).stdout)
    assert.deepEqual([...after.Tags].sort(), ['c', 'd', 'e'], 'deleting the manifest removed both of its tags')

    const again = lading(['delete', `docker://${reg.host}/cli/app:a`, '--tls-verify=false', '--authfile', authFile], { env })
    assert.equal(again.status, 1)
    assert.match(again.stderr, /^lading: docker:\/\/127\.0\.0\.1:\d+\/cli\/app:a: no such image\n$/)
  })

  test('login on a terminal without -p prompts for the password (hidden) and stores it', async (t) => {
    if (!requireTool(t, 'script')) return // util-linux's script(1) gives the CLI a pseudo-terminal
    const file = path.join(tmp, 'prompted.json')
    const r = spawnSync('script', ['-qec', `${process.execPath} ${cliPath} login ${reg.host} -u alice --tls-verify=false --authfile ${file}`, '/dev/null'], {
      input: 'pa55\r',
      encoding: 'utf8',
      env: { ...process.env, ...env },
    })
    assert.equal(r.status, 0, r.stdout)
    assert.match(r.stdout, /Password: [\s\S]*Login Succeeded!/)
    const stored = JSON.parse(await fsp.readFile(file, 'utf8'))
    assert.equal(Buffer.from(stored.auths[reg.host].auth, 'base64').toString(), 'alice:pa55')
  })

  test('--creds on the command line works without an auth file', () => {
    const r = lading(['list-tags', `docker://${reg.host}/cli/app`, '--tls-verify=false', '--creds', 'alice:pa55', '--authfile', path.join(tmp, 'none.json')], {
      env,
    })
    assert.equal(r.status, 0, r.stderr)
    assert.ok(JSON.parse(r.stdout).Tags.includes('c'))
  })

  test('usage errors exit 2 with a line saying what was expected', () => {
    const tagged = lading(['list-tags', `docker://${reg.host}/cli/app:c`, '--tls-verify=false'], { env })
    assert.equal(tagged.status, 2)
    assert.match(tagged.stderr, /give the repository only/)
    const bad = lading(['delete', 'docker://UPPER/app', '--tls-verify=false'], { env })
    assert.equal(bad.status, 2)
    assert.match(bad.stderr, /expected docker:\/\/\[REGISTRY\/\]REPO/)
    const tls = lading(['list-tags', `docker://${reg.host}/cli/app`, '--tls-verify=maybe'], { env })
    assert.equal(tls.status, 2)
    const nouser = lading(['login', reg.host, '-p', 'x', '--authfile', authFile], { env })
    assert.equal(nouser.status, 2)
  })

  test('logout removes the entry; a second logout says it was not logged in', async () => {
    const r = lading(['logout', reg.host, '--authfile', authFile], { env })
    assert.equal(r.status, 0, r.stderr)
    const stored = JSON.parse(await fsp.readFile(authFile, 'utf8'))
    assert.equal(stored.auths[reg.host], undefined)
    const again = lading(['logout', reg.host, '--authfile', authFile], { env })
    assert.equal(again.status, 1)
    assert.match(again.stderr, /^lading: logout: not logged in to 127\.0\.0\.1:\d+/)
  })
})
