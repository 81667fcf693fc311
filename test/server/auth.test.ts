/**
 * `lading serve` with authentication (htpasswd bcrypt; basic and bearer-token modes), access
 * rules per repository from a JSON config file, and TLS; `lading login`/`lading copy` and skopeo
 * work against it.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { promises as fsp, readFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { lading, ladingOk, runOk } from '../helpers/cli.js'
import { errorCode, request, spawnServer, type ChildServer } from '../helpers/lading-server.js'
import { requireTool } from '../helpers/tools.js'
import { selfSigned } from '../fixtures/tls.js'
import { tempDir } from '../fixtures/temp.js'

/** A token for bob from the server's token endpoint, for `scope` (repository:NAME:ACTIONS without the prefix). */
async function bobToken(s: ChildServer, scope: string): Promise<string> {
  const r = await request(`${s.url}/auth/token?service=lading-test&scope=repository:${scope}`, 'GET', { headers: { Authorization: basic('bob', 'b-secret') } })
  return (JSON.parse(r.body.toString()) as { token: string }).token
}

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
}

describe('lading serve: authentication and access rules', () => {
  const tmp = tempDir({ after }, { prefix: 'lading-serve-auth-' })
  let src: string
  let config: string
  before(async () => {
    const htpasswd = path.join(tmp, 'htpasswd')
    await fsp.writeFile(
      htpasswd,
      ['alice:a-secret', 'bob:b-secret'].map((u) => execFileSync('htpasswd', ['-Bbn', ...u.split(':')], { encoding: 'utf8' }).trim()).join('\n') + '\n',
    )
    config = path.join(tmp, 'serve.json')
    await fsp.writeFile(
      config,
      JSON.stringify({
        accessLog: 'off',
        auth: {
          htpasswd: 'htpasswd',
          realm: 'lading-test',
          access: [
            { repository: '*', users: ['alice'], actions: ['pull', 'push', 'delete'] },
            { repository: 'team/*', users: ['bob'], actions: ['pull'] },
            { repository: 'bob/*', users: ['bob'], actions: ['pull', 'push'] },
            { repository: 'public/*', users: ['anonymous', '*'], actions: ['pull'] },
          ],
        },
      }),
    )
    src = path.join(tmp, 'src')
    ladingOk(['init', '--layout', src])
    ladingOk(['new', '--image', `${src}:base`])
  })
  for (const mode of ['basic', 'token'] as const) {
    describe(`${mode} mode`, () => {
      let s: ChildServer
      before(async () => {
        s = await spawnServer(path.join(tmp, `root-${mode}`), ['--config', config, '--auth-mode', mode])
      })
      after(async () => {
        await s.stop()
      })

      test('/v2/ asks for credentials, refuses wrong ones and accepts right ones', async () => {
        const none = await request(`${s.url}/v2/`, 'GET')
        assert.equal(none.status, 401)
        assert.equal(errorCode(none), 'UNAUTHORIZED')
        assert.match(
          String(none.headers['www-authenticate']),
          mode === 'basic' ? /^Basic realm="lading-test"$/ : /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/auth\/token",service="lading-test"$/,
        )
        assert.equal((await request(`${s.url}/v2/`, 'GET', { headers: { Authorization: basic('alice', 'wrong') } })).status, 401)
        assert.equal((await request(`${s.url}/v2/`, 'GET', { headers: { Authorization: basic('nobody', 'a-secret') } })).status, 401)
        assert.equal((await request(`${s.url}/v2/`, 'GET', { headers: { Authorization: basic('alice', 'a-secret') } })).status, 200)
      })

      test('lading copy pushes with credentials; rules give bob pull on team/* only, anonymous pull on public/*', async () => {
        const denied = lading(['copy', '--quiet', '--dest-tls-verify=false', `oci:${src}:base`, `docker://${s.host}/team/app:v1`])
        assert.equal(denied.status, 1)
        assert.match(denied.stderr, /^lading: .*(401|403|UNAUTHORIZED|DENIED|unauthorized|denied)/i)
        for (const repo of ['team/app', 'public/app', 'private/app']) {
          ladingOk(['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', 'alice:a-secret', `oci:${src}:base`, `docker://${s.host}/${repo}:v1`])
        }
        ladingOk(['inspect', '--tls-verify=false', '--creds', 'bob:b-secret', `docker://${s.host}/team/app:v1`])
        const bobPush = lading([
          'copy',
          '--quiet',
          '--dest-tls-verify=false',
          '--dest-creds',
          'bob:b-secret',
          `oci:${src}:base`,
          `docker://${s.host}/team/app:v2`,
        ])
        assert.equal(bobPush.status, 1, 'bob may not push')
        assert.equal(
          lading(['inspect', '--tls-verify=false', '--creds', 'bob:b-secret', `docker://${s.host}/private/app:v1`]).status,
          1,
          'bob may not pull private/*',
        )
        ladingOk(['inspect', '--tls-verify=false', `docker://${s.host}/public/app:v1`])
        assert.equal(lading(['inspect', '--tls-verify=false', `docker://${s.host}/private/app:v1`]).status, 1, 'anonymous may not pull private/*')
        if (mode === 'basic') {
          const r = await request(`${s.url}/v2/team/app/blobs/uploads/`, 'POST', { headers: { Authorization: basic('bob', 'b-secret') } })
          assert.equal(r.status, 403)
          assert.equal(errorCode(r), 'DENIED')
        }
      })

      test('automatic mount (no from) only takes blobs from repositories the caller may pull', async () => {
        const tag = ladingOk(['inspect', '--raw', '--tls-verify=false', '--creds', 'alice:a-secret', `docker://${s.host}/private/app:v1`]).stdout
        const layer = (JSON.parse(tag) as { layers: Array<{ digest: string }> }).layers[0]!.digest
        const auth = mode === 'basic' ? { Authorization: basic('bob', 'b-secret') } : { Authorization: `Bearer ${await bobToken(s, 'bob/mine:pull,push')}` }
        // The same layer is in team/app and public/app (bob may pull) and private/app (he may not):
        // take it out of the first two.
        for (const repo of ['team/app', 'public/app']) {
          const del = await request(`${s.url}/v2/${repo}/blobs/${layer}`, 'DELETE', { headers: { Authorization: basic('alice', 'a-secret') } })
          assert.equal(del.status, 202)
        }
        const m = await request(`${s.url}/v2/bob/mine/blobs/uploads/?mount=${layer}`, 'POST', { headers: auth })
        assert.equal(m.status, 202, 'no mount from private/app for bob')
      })

      test('lading login stores credentials that copy then uses', async () => {
        const env = { REGISTRY_AUTH_FILE: path.join(tmp, `auth-${mode}.json`), HOME: tmp, CONTAINERS_REGISTRIES_CONF: path.join(tmp, 'none.conf') }
        await fsp.writeFile(env.CONTAINERS_REGISTRIES_CONF, '')
        ladingOk(['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', s.host], { env, input: 'a-secret\n' })
        ladingOk(['copy', '--quiet', '--dest-tls-verify=false', `oci:${src}:base`, `docker://${s.host}/login/app:v1`], { env })
        assert.equal(lading(['login', '--tls-verify=false', '-u', 'alice', '--password-stdin', s.host], { env, input: 'nope\n' }).status, 1)
      })

      test('skopeo pushes and pulls with credentials', async (t) => {
        if (!requireTool(t, 'skopeo')) return
        runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', 'alice:a-secret', `oci:${src}:base`, `docker://${s.host}/skopeo/app:v1`])
        runOk('skopeo', [
          'copy',
          '--quiet',
          '--src-tls-verify=false',
          '--src-creds',
          'alice:a-secret',
          `docker://${s.host}/skopeo/app:v1`,
          `oci:${path.join(tmp, `skopeo-${mode}`)}:v1`,
        ])
        assert.throws(
          () => execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${s.host}/skopeo/app:v1`], { stdio: ['ignore', 'pipe', 'pipe'] }),
          'anonymous may not pull skopeo/app',
        )
      })
    })
  }

  test('token mode: the token endpoint grants only what the rules allow, and a token lacking a scope gets a challenge for it', async () => {
    const s = await spawnServer(path.join(tmp, 'root-token2'), ['--config', config, '--auth-mode', 'token'])
    try {
      const tok = await request(`${s.url}/auth/token?service=lading-test&scope=repository:team/app:pull,push`, 'GET', {
        headers: { Authorization: basic('bob', 'b-secret') },
      })
      assert.equal(tok.status, 200)
      const token = JSON.parse(tok.body.toString()).token as string
      const pull = await request(`${s.url}/v2/team/app/tags/list`, 'GET', { headers: { Authorization: `Bearer ${token}` } })
      assert.notEqual(pull.status, 401)
      const push = await request(`${s.url}/v2/team/app/blobs/uploads/`, 'POST', { headers: { Authorization: `Bearer ${token}` } })
      assert.equal(push.status, 403, 'bob is known and refused push')
      const other = await request(`${s.url}/v2/public/x/tags/list`, 'GET', { headers: { Authorization: `Bearer ${token}` } })
      assert.equal(other.status, 401)
      assert.match(String(other.headers['www-authenticate']), /scope="repository:public\/x:pull"/)
      assert.equal((await request(`${s.url}/auth/token?scope=repository:x:pull`, 'GET', { headers: { Authorization: basic('bob', 'bad') } })).status, 401)
      // A token whose claims were changed, and one whose signature's spare bits were.
      const [payload, sig] = token.split('.') as [string, string]
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { access: Array<{ name: string; actions: string[] }> }
      claims.access.push({ name: 'public/x', actions: ['pull', 'push', 'delete'] })
      const forgedClaims = `${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`
      const last = sig.slice(-1)
      const spare = 'AEIMQUYcgkosw048'.includes(last) ? String.fromCharCode(last.charCodeAt(0) + 1) : last
      for (const forged of [forgedClaims, `${payload}.${sig.slice(0, -1)}${spare}`].filter((f) => f !== token)) {
        assert.equal((await request(`${s.url}/v2/public/x/tags/list`, 'GET', { headers: { Authorization: `Bearer ${forged}` } })).status, 401)
      }
    } finally {
      await s.stop()
    }
  })
})

describe('lading serve: TLS and config errors', () => {
  test('--tls-cert/--tls-key serve HTTPS that lading copy and curl reach', async (t) => {
    if (!requireTool(t, 'openssl')) return
    const tmp = tempDir(t, { prefix: 'lading-serve-tls-' })
    const { cert, key } = selfSigned(tmp, 'serve', 'lading-serve')
    const { spawn } = await import('node:child_process')
    const { binPath } = await import('../helpers/cli.js')
    const child = spawn(
      binPath,
      ['serve', '--root', path.join(tmp, 'root'), '--listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key, '--access-log', 'off'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        child.stdout!.on('data', (b: Buffer) => {
          out += b.toString()
          const m = /https:\/\/127\.0\.0\.1:\d+/.exec(out)
          if (m) resolve(m[0])
        })
        child.on('exit', () => reject(new Error(`exited: ${out}`)))
      })
      const host = url.slice(8)
      const https = await import('node:https')
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get(`${url}/v2/`, { ca: readFileSync(cert) }, (res) => {
            let b = ''
            res.on('data', (c: Buffer) => {
              b += c.toString()
            })
            res.on('end', () => resolve(b))
          })
          .on('error', reject)
      })
      assert.equal(body, '{}')
      const certDir = path.join(tmp, 'certs')
      await fsp.mkdir(certDir)
      await fsp.copyFile(cert, path.join(certDir, 'ca.crt'))
      const src = path.join(tmp, 'src')
      ladingOk(['init', '--layout', src])
      ladingOk(['new', '--image', `${src}:base`])
      ladingOk(['copy', '--quiet', '--dest-cert-dir', certDir, `oci:${src}:base`, `docker://${host}/tls/app:v1`])
      ladingOk(['inspect', '--cert-dir', certDir, `docker://${host}/tls/app:v1`])
    } finally {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
    }
  })

  test('a bad config or flag is one usage line and exit 2', async (t) => {
    const tmp = tempDir(t, { prefix: 'lading-serve-cfg-' })
    const bad = path.join(tmp, 'bad.json')
    await fsp.writeFile(bad, JSON.stringify({ root: 'r', gcc: {} }))
    const r1 = lading(['serve', '--config', bad])
    assert.equal(r1.status, 2)
    assert.match(r1.stderr, /^lading: .*bad\.json: \/gcc: unknown setting/)
    assert.equal(r1.stderr.trim().split('\n').length, 1)
    const r2 = lading(['serve', '--root', tmp, '--listen', 'nonsense'])
    assert.equal(r2.status, 2)
    assert.match(r2.stderr, /^lading: invalid listen address/)
    const r3 = lading(['serve'])
    assert.equal(r3.status, 2)
    const h = path.join(tmp, 'h')
    await fsp.writeFile(h, 'alice:plaintext\n')
    const r4 = lading(['serve', '--root', tmp, '--htpasswd', h])
    assert.equal(r4.status, 2)
    assert.match(r4.stderr, /not a bcrypt htpasswd entry/)
  })
})
