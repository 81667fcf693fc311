/**
 * Authentication against docker-registry: htpasswd basic auth and bearer tokens from a token
 * server run by the test (JWTs signed with an openssl-made RSA key and certificate). Wrong
 * passwords are one clear line; credentials come from options, auth files or helpers.
 */
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { RegistryClient } from '../../../src/transport/registry/client.js'
import { startRegistry, registryAvailable, type RunningRegistry } from '../../helpers/registry.js'
import { startTokenServer, type TokenServer } from '../../helpers/token-server.js'
import { startFaultProxy } from '../../helpers/fault-proxy.js'
import { MONOLITHIC_MAX } from '../../../src/transport/registry/blob-upload.js'
import { spawnSync } from 'node:child_process'
import { lading, ladingOk } from '../../helpers/cli.js'
import { oneLine } from '../../helpers/one-line-error.js'
import { findTool, requireTool } from '../../helpers/tools.js'
import { buffer } from 'node:stream/consumers'
import { makeImage, stream, type TestImage } from '../../fixtures/image.js'
import { tempDir } from '../../fixtures/temp.js'

const skip = registryAvailable() ? false : process.env.CI === 'true' ? false : 'docker-registry not installed'
const fast = { attempts: 3, baseDelayMs: 5, maxDelayMs: 50 }

async function pushAndPull(c: RegistryClient, repo: string, img: TestImage): Promise<void> {
  for (const b of [img.config, ...img.layers]) await c.putBlob(repo, stream(b.bytes), b.desc)
  await c.putManifest(repo, 'v1', img.manifest)
  const m = await c.getManifest(repo, 'v1')
  assert.equal(m.digest, img.manifest.digest)
  for (const b of [img.config, ...img.layers]) assert.deepEqual(await buffer(await c.getBlob(repo, b.desc)), b.bytes)
}

describe('htpasswd basic auth', { skip }, () => {
  let reg: RunningRegistry
  const tmp = tempDir({ after }, { prefix: 'lading-auth-' })
  before(async () => {
    reg = await startRegistry({ htpasswd: [{ username: 'alice', password: 's3cret:with:colons' }] })
  })
  after(async () => {
    await reg?.stop()
  })
  const env = (): NodeJS.ProcessEnv => ({ HOME: tmp, PATH: `${tmp}:${process.env.PATH}` })

  test('push and pull with --creds', async () => {
    const c = new RegistryClient({
      registry: reg.host,
      tlsVerify: false,
      retry: fast,
      env: env(),
      creds: { username: 'alice', password: 's3cret:with:colons' },
    })
    try {
      await pushAndPull(c, 'basic/app', makeImage({ layers: [3000, 70_000] }))
    } finally {
      await c.close()
    }
  })

  test('wrong password: one line, UNAUTHORIZED, "wrong username or password"', async () => {
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false, retry: fast, env: env(), creds: { username: 'alice', password: 'nope' } })
    try {
      await assert.rejects(c.getManifest('basic/app', 'v1'), (e) =>
        oneLine(e, 'UNAUTHORIZED', /^docker:\/\/127\.0\.0\.1:\d+\/basic\/app: GET manifest v1: UNAUTHORIZED: wrong username or password$/),
      )
      await assert.rejects(c.checkLogin(), (e) => oneLine(e, 'UNAUTHORIZED', /wrong username or password/))
    } finally {
      await c.close()
    }
  })

  test('no credentials: UNAUTHORIZED from the registry, in one line', async () => {
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false, retry: fast, env: env() })
    try {
      await assert.rejects(c.listTags('basic/app'), (e) => oneLine(e, 'UNAUTHORIZED', /401 UNAUTHORIZED/))
    } finally {
      await c.close()
    }
  })

  test('credentials from an auth file (--authfile), base64 auth entry', async () => {
    const file = path.join(tmp, 'auth.json')
    await fsp.writeFile(file, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:s3cret:with:colons').toString('base64') } } }))
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false, retry: fast, env: env(), authFile: file })
    try {
      assert.deepEqual(await c.listTags('basic/app'), ['v1'])
    } finally {
      await c.close()
    }
  })

  test('credentials from ~/.docker/config.json credHelpers (docker-credential-<name> get, server on stdin)', async () => {
    const helper = path.join(tmp, 'docker-credential-ladingtest')
    const seen = path.join(tmp, 'helper-stdin')
    await fsp.writeFile(
      helper,
      `#!/bin/sh\n[ "$1" = get ] || exit 3\ncat > '${seen}'\nprintf '{"ServerURL":"x","Username":"alice","Secret":"s3cret:with:colons"}'\n`,
      { mode: 0o755 },
    )
    await fsp.mkdir(path.join(tmp, '.docker'), { recursive: true })
    await fsp.writeFile(path.join(tmp, '.docker', 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'ladingtest' } }))
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false, retry: fast, env: env() })
    try {
      assert.deepEqual(await c.listTags('basic/app'), ['v1'])
      assert.equal(await fsp.readFile(seen, 'utf8'), reg.host)
    } finally {
      await c.close()
      await fsp.rm(path.join(tmp, '.docker'), { recursive: true, force: true })
    }
  })

  test('credentials from registries.conf credential-helpers, through the CLI; skopeo given the same file agrees', async (t) => {
    const helper = path.join(tmp, 'docker-credential-ladingconf')
    await fsp.writeFile(
      helper,
      `#!/bin/sh\n[ "$1" = get ] || exit 3\nread s\n[ "$s" = '${reg.host}' ] || { echo "credentials not found"; exit 1; }\nprintf '{"ServerURL":"x","Username":"alice","Secret":"s3cret:with:colons"}'\n`,
      { mode: 0o755 },
    )
    const conf = path.join(tmp, 'registries-ch.conf')
    await fsp.writeFile(conf, 'credential-helpers = ["ladingconf"]\n')
    const cliEnv = { HOME: tmp, PATH: `${tmp}:${process.env.PATH}`, CONTAINERS_REGISTRIES_CONF: conf }
    const ok = ladingOk(['list-tags', '--tls-verify=false', `docker://${reg.host}/basic/app`], { env: cliEnv })
    assert.deepEqual(JSON.parse(ok.stdout).Tags, ['v1'])
    // Without the helper in the list (only the auth files, which know nothing): refused, one line.
    await fsp.writeFile(conf, 'credential-helpers = ["containers-auth.json"]\n')
    const refused = lading(['list-tags', '--tls-verify=false', `docker://${reg.host}/basic/app`], { env: cliEnv })
    assert.equal(refused.status, 1)
    assert.match(refused.stderr, /^lading: .*401.*\n$/)
    if (!requireTool(t, 'skopeo')) return
    const skopeo = findTool('skopeo')!
    await fsp.writeFile(conf, 'credential-helpers = ["ladingconf"]\n')
    const sk = spawnSync(skopeo, ['--registries-conf', conf, 'list-tags', '--tls-verify=false', `docker://${reg.host}/basic/app`], {
      env: { ...process.env, ...cliEnv },
      encoding: 'utf8',
    })
    assert.equal(sk.status, 0, sk.stderr)
    assert.deepEqual(JSON.parse(sk.stdout).Tags, ['v1'])
  })

  test('login and logout store in and erase from registries.conf credential-helpers, not the auth file', async () => {
    // A helper that keeps one entry in a file: store, get, erase and list, as docker-credential-helpers do.
    const entry = path.join(tmp, 'helper-entry.json')
    const helper = path.join(tmp, 'docker-credential-ladingstore')
    await fsp.writeFile(
      helper,
      [
        '#!/bin/sh',
        `e='${entry}'`,
        'case "$1" in',
        '  store) cat > "$e" ;;',
        '  get) read s; [ -f "$e" ] && grep -q "\\"ServerURL\\":\\"$s\\"" "$e" && cat "$e" || { echo "credentials not found in native keychain"; exit 1; } ;;',
        '  erase) read s; [ -f "$e" ] && rm "$e" || { echo "credentials not found in native keychain"; exit 1; } ;;',
        '  list) if [ -f "$e" ]; then printf \'{"%s":"alice"}\' "$(sed \'s/.*"ServerURL":"\\([^"]*\\)".*/\\1/\' "$e")"; else echo "{}"; fi ;;',
        '  *) exit 3 ;;',
        'esac',
        '',
      ].join('\n'),
      { mode: 0o755 },
    )
    const conf = path.join(tmp, 'registries-store.conf')
    await fsp.writeFile(conf, 'credential-helpers = ["ladingstore"]\n')
    const authFile = path.join(tmp, 'untouched-auth.json')
    const cliEnv = { HOME: tmp, PATH: `${tmp}:${process.env.PATH}`, CONTAINERS_REGISTRIES_CONF: conf, REGISTRY_AUTH_FILE: authFile }
    const tags = ['list-tags', '--tls-verify=false', `docker://${reg.host}/basic/app`]

    assert.match(
      ladingOk(['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', reg.host], { env: cliEnv, input: 's3cret:with:colons\n' }).stdout,
      /Login Succeeded/,
    )
    assert.deepEqual(JSON.parse(await fsp.readFile(entry, 'utf8')), { ServerURL: reg.host, Username: 'alice', Secret: 's3cret:with:colons' })
    await assert.rejects(fsp.stat(authFile), { code: 'ENOENT' }, 'the auth file is not in the list, so it is not written')
    assert.deepEqual(JSON.parse(ladingOk(tags, { env: cliEnv }).stdout).Tags, ['v1'], 'and the stored credentials are used')

    assert.match(ladingOk(['logout', reg.host], { env: cliEnv }).stdout, /Removed login credentials/)
    await assert.rejects(fsp.stat(entry), { code: 'ENOENT' })
    const again = lading(['logout', reg.host], { env: cliEnv })
    assert.equal(again.status, 1)
    assert.match(again.stderr, /^lading: logout: not logged in to .* \(in docker-credential-ladingstore\)\n$/)

    ladingOk(['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', reg.host], { env: cliEnv, input: 's3cret:with:colons\n' })
    ladingOk(['logout', '--all'], { env: cliEnv })
    await assert.rejects(fsp.stat(entry), { code: 'ENOENT' }, "--all lists the helper's entries and erases each")

    // A helper that is not installed is passed over: login stores in the next one, and
    // logout --all skips it.
    await fsp.writeFile(conf, 'credential-helpers = ["notinstalled", "ladingstore"]\n')
    ladingOk(['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', reg.host], { env: cliEnv, input: 's3cret:with:colons\n' })
    assert.equal(JSON.parse(await fsp.readFile(entry, 'utf8')).Username, 'alice')
    assert.deepEqual(JSON.parse(ladingOk(tags, { env: cliEnv }).stdout).Tags, ['v1'])
    ladingOk(['logout', '--all'], { env: cliEnv })
    await assert.rejects(fsp.stat(entry), { code: 'ENOENT' })
  })

  test('security: a blob redirect to another host does not carry the Authorization header', async () => {
    const img = makeImage({ layers: [4000] })
    const layer = img.layers[0]!
    const c = new RegistryClient({
      registry: reg.host,
      tlsVerify: false,
      retry: fast,
      env: env(),
      creds: { username: 'alice', password: 's3cret:with:colons' },
    })
    const front = await startFaultProxy(reg.url)
    // The "blob store" is another origin: a second proxy that records headers and forwards to
    // the registry, which answers 401 because the credentials were (rightly) not sent along.
    const store = await startFaultProxy(reg.url)
    const viaFront = new RegistryClient({
      registry: front.host,
      tlsVerify: false,
      retry: fast,
      env: env(),
      creds: { username: 'alice', password: 's3cret:with:colons' },
    })
    try {
      await c.putBlob('basic/redirect', stream(layer.bytes), layer.desc)
      front.addFault({
        method: 'GET',
        path: /\/blobs\/sha256:/,
        fault: { kind: 'redirect', location: `${store.url}/v2/basic/redirect/blobs/${layer.desc.digest}` },
      })
      await assert.rejects(
        async () => buffer(await viaFront.getBlob('basic/redirect', layer.desc)),
        (e) => oneLine(e, 'UNAUTHORIZED', /401/),
      )
      const atFront = front.requests.filter((q) => q.path.includes('/blobs/sha256:'))
      assert.equal(atFront[0]!.authorization, true, 'the registry itself got credentials')
      assert.equal(store.requests.length, 1)
      assert.equal(store.requests[0]!.authorization, false, 'the other host did not')
    } finally {
      await c.close()
      await viaFront.close()
      await front.stop()
      await store.stop()
    }
  })
  test('security: a streamed PATCH to an upload Location on another host does not get the Authorization header', async () => {
    const layer = makeImage({ layers: [MONOLITHIC_MAX + 1000] }).layers[0]!
    const front = await startFaultProxy(reg.url)
    const elsewhere = await startFaultProxy(reg.url)
    const c = new RegistryClient({
      registry: front.host,
      tlsVerify: false,
      retry: fast,
      env: env(),
      creds: { username: 'alice', password: 's3cret:with:colons' },
    })
    try {
      front.addFault({ method: 'POST', path: /\/basic\/sforeign\/blobs\/uploads\/$/, fault: { kind: 'rewrite-location', origin: elsewhere.url } })
      await assert.rejects(c.putBlob('basic/sforeign', stream(layer.bytes, 64 * 1024), layer.desc), (e) => oneLine(e, 'UNAUTHORIZED', /401/))
      assert.ok(
        elsewhere.requests.some((q) => q.method === 'PATCH'),
        'the blob was streamed to the other host',
      )
      assert.ok(
        elsewhere.requests.every((q) => !q.authorization),
        'without credentials',
      )
    } finally {
      await c.close()
      await front.stop()
      await elsewhere.stop()
    }
  })

  test('security: an upload Location on another host does not get the Authorization header', async () => {
    const layer = makeImage({ layers: [2000] }).layers[0]!
    const front = await startFaultProxy(reg.url)
    const elsewhere = await startFaultProxy(reg.url)
    const c = new RegistryClient({
      registry: front.host,
      tlsVerify: false,
      retry: fast,
      env: env(),
      creds: { username: 'alice', password: 's3cret:with:colons' },
    })
    try {
      front.addFault({ method: 'POST', path: /\/basic\/foreign\/blobs\/uploads\/$/, fault: { kind: 'rewrite-location', origin: elsewhere.url } })
      await assert.rejects(c.putBlob('basic/foreign', stream(layer.bytes), layer.desc), (e) => oneLine(e, 'UNAUTHORIZED', /401/))
      assert.ok(
        front.requests.filter((q) => q.method === 'POST').every((q) => q.authorization),
        'the registry got credentials',
      )
      assert.ok(elsewhere.requests.length >= 1)
      assert.ok(
        elsewhere.requests.every((q) => !q.authorization),
        'the other host never did',
      )
    } finally {
      await c.close()
      await front.stop()
      await elsewhere.stop()
    }
  })
})

describe('bearer token auth (token server + docker-registry auth.token)', { skip }, () => {
  let tokens: TokenServer
  let reg: RunningRegistry
  before(async () => {
    tokens = await startTokenServer({ users: { bob: 'hunter2' }, refreshTokens: { 'rt-bob-1': 'bob' } })
    reg = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certFile } })
  })
  after(async () => {
    await reg?.stop()
    await tokens?.stop()
  })
  const client = (password = 'hunter2'): RegistryClient =>
    new RegistryClient({ registry: reg.host, tlsVerify: false, retry: fast, env: { HOME: '/nonexistent' }, creds: { username: 'bob', password } })

  test('a blob over 8 MiB streams in one PATCH under the token, and pulls back', async () => {
    const c = client()
    try {
      await pushAndPull(c, 'tok/big', makeImage({ layers: [MONOLITHIC_MAX + 1000] }))
    } finally {
      await c.close()
    }
  })

  test('push and pull with a token; the token asks for pull,push on the repository', async () => {
    const c = client()
    try {
      await pushAndPull(c, 'tok/app', makeImage({ layers: [3000, 70_000] }))
      const req = tokens.requests.find((r) => r.scopes.includes('repository:tok/app:pull,push'))
      assert.ok(req, JSON.stringify(tokens.requests))
      assert.equal(req.user, 'bob')
      assert.equal(req.service, tokens.service)
    } finally {
      await c.close()
    }
  })

  test('wrong password: one line, UNAUTHORIZED, "wrong username or password"', async () => {
    const c = client('wrong')
    try {
      await assert.rejects(c.getManifest('tok/app', 'v1'), (e) =>
        oneLine(e, 'UNAUTHORIZED', /^docker:\/\/127\.0\.0\.1:\d+: UNAUTHORIZED: wrong username or password$/),
      )
      await assert.rejects(c.checkLogin(), (e) => oneLine(e, 'UNAUTHORIZED', /wrong username or password/))
    } finally {
      await c.close()
    }
  })

  test('anonymous: the token grants nothing and the registry says so in one line', async () => {
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false, retry: fast, env: { HOME: '/nonexistent' } })
    try {
      await assert.rejects(c.getManifest('tok/app', 'v1'), (e) => oneLine(e, 'UNAUTHORIZED', /401 UNAUTHORIZED/))
    } finally {
      await c.close()
    }
  })

  test('an expired token is refreshed on the registry 401 and the request succeeds', async () => {
    const c = client()
    try {
      const img = makeImage({ layers: [100] })
      await pushAndPull(c, 'tok/refresh', img)
      const before = tokens.requests.length
      tokens.expireNext(1)
      const c2 = client()
      try {
        assert.equal((await c2.getManifest('tok/refresh', 'v1')).digest, img.manifest.digest)
      } finally {
        await c2.close()
      }
      const fetched = tokens.requests.slice(before).filter((r) => r.scopes.includes('repository:tok/refresh:pull'))
      assert.equal(fetched.length, 2, 'one expired token, one fresh')
    } finally {
      await c.close()
    }
  })

  test('delete with a token: the token asks for delete on the repository', async () => {
    const c = client()
    try {
      const img = makeImage({ layers: [77] })
      await pushAndPull(c, 'tok/del', img)
      await c.deleteManifest('tok/del', img.manifest.digest)
      assert.equal(await c.headManifest('tok/del', img.manifest.digest), undefined)
      assert.ok(
        tokens.requests.some((r) => r.scopes.includes('repository:tok/del:pull,delete')),
        JSON.stringify(tokens.requests.map((r) => r.scopes)),
      )
    } finally {
      await c.close()
    }
  })

  test('concurrent requests share one token request', async () => {
    const c = client()
    try {
      const img = makeImage({ layers: [10, 20, 30, 40] })
      for (const b of [img.config, ...img.layers]) await c.putBlob('tok/conc', stream(b.bytes), b.desc)
      const c2 = client()
      try {
        const before = tokens.requests.length
        await Promise.all([img.config, ...img.layers].map(async (b) => buffer(await c2.getBlob('tok/conc', b.desc))))
        assert.equal(tokens.requests.length - before, 1)
      } finally {
        await c2.close()
      }
    } finally {
      await c.close()
    }
  })

  test('an identity token from the auth file is exchanged with grant_type=refresh_token (POST)', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-idtoken-' })
    const file = path.join(dir, 'auth.json')
    await fsp.writeFile(file, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('bob:').toString('base64'), identitytoken: 'rt-bob-1' } } }))
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false, retry: fast, env: { HOME: dir }, authFile: file })
    try {
      await pushAndPull(c, 'tok/idtoken', makeImage({ layers: [64] }))
    } finally {
      await c.close()
    }
    const posts = tokens.requests.filter((r) => r.method === 'POST' && r.scopes.includes('repository:tok/idtoken:pull,push'))
    assert.ok(posts.length >= 1 && posts.every((r) => r.user === 'bob' && r.status === 200), JSON.stringify(tokens.requests.slice(-3)))
    await fsp.writeFile(file, JSON.stringify({ auths: { [reg.host]: { identitytoken: 'revoked' } } }))
    const bad = new RegistryClient({ registry: reg.host, tlsVerify: false, retry: fast, env: { HOME: dir }, authFile: file })
    try {
      await assert.rejects(bad.listTags('tok/idtoken'), (e) => oneLine(e, 'UNAUTHORIZED', /identity token was refused/))
    } finally {
      await bad.close()
    }
  })

  test('cross-repository mount asks one token for push on the target and pull on the source', async () => {
    const c = client()
    try {
      const layer = makeImage({ layers: [1234] }).layers[0]!
      await c.putBlob('tok/src', stream(layer.bytes), layer.desc)
      assert.equal(await c.mountBlob('tok/dst', layer.desc.digest, 'tok/src'), true)
      const req = tokens.requests.find((r) => r.scopes.includes('repository:tok/dst:pull,push') && r.scopes.includes('repository:tok/src:pull'))
      assert.ok(req, JSON.stringify(tokens.requests.map((r) => r.scopes)))
      assert.equal(await c.blobSize('tok/dst', layer.desc.digest), layer.desc.size)
    } finally {
      await c.close()
    }
  })
})
