/**
 * Issue 10 items 9 and 13. Manifests behind a redirect (a registry behind a CDN or proxy) are
 * followed as blobs are: GET and HEAD, a bounded number of hops, credentials never sent to
 * another host. And what the registry client says when it fails: TLS spoken to a plain-HTTP
 * registry, a push refused for want of credentials, and every bare status (no JSON error body,
 * as with HEAD) in words with what to do, never a lone "HTTP 401".
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { RegistryClient } from '../../../src/transport/registry/client.js'
import { registryMissing, startRegistry, type RunningRegistry } from '../../helpers/registry.js'
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js'
import { listenOnLoopback, type Listening } from '../../helpers/loopback.js'
import { lading, ladingAsync, ladingOk } from '../../helpers/cli.js'
import { oneLine } from '../../helpers/one-line-error.js'
import { makeImage, stream, type TestImage } from '../../fixtures/image.js'
import { tempDir } from '../../fixtures/temp.js'

const skip = registryMissing()
const retry = { attempts: 2, baseDelayMs: 5, maxDelayMs: 20 }
const alice = { username: 'alice', password: 'pw' }

async function push(c: RegistryClient, repo: string, img: TestImage): Promise<void> {
  for (const b of [img.config, ...img.layers]) await c.putBlob(repo, stream(b.bytes), b.desc)
  await c.putManifest(repo, 'v1', img.manifest)
}

describe('manifest redirects (registry behind a CDN or proxy)', { skip }, () => {
  let reg: RunningRegistry
  let front: FaultProxy
  let cdn: FaultProxy
  let img: TestImage
  const manifestUrl = (repo: string): string => `${cdn.url}/v2/${repo}/manifests/${img.manifest.digest}`
  before(async () => {
    reg = await startRegistry()
    front = await startFaultProxy(reg.url)
    cdn = await startFaultProxy(reg.url)
    img = makeImage({ layers: [2000] })
    const direct = new RegistryClient({ registry: reg.host, tlsVerify: false })
    try {
      await push(direct, 'redir/app', img)
    } finally {
      await direct.close()
    }
  })
  after(async () => {
    await front?.stop()
    await cdn?.stop()
    await reg?.stop()
  })

  test('manifest-redirect: GET and HEAD of a manifest redirected to another origin are followed and verified', async () => {
    const c = new RegistryClient({ registry: front.host, tlsVerify: false, retry })
    try {
      front.addFault({ method: 'GET', path: /\/redir\/app\/manifests\/v1$/, fault: { kind: 'redirect', location: manifestUrl('redir/app') } })
      const m = await c.getManifest('redir/app', 'v1')
      assert.equal(m.digest, img.manifest.digest)
      assert.deepEqual(m.bytes, img.manifest.bytes)
      front.addFault({ method: 'HEAD', path: /\/redir\/app\/manifests\/v1$/, fault: { kind: 'redirect', location: manifestUrl('redir/app') } })
      assert.equal((await c.headManifest('redir/app', 'v1'))?.digest, img.manifest.digest)
      assert.equal(front.pending(), 0)
      assert.deepEqual(
        cdn.requests.map((r) => r.method),
        ['GET', 'HEAD'],
      )
    } finally {
      await c.close()
    }
  })

  test('manifest-redirect-cli: `lading inspect` and `lading copy` follow a redirected manifest', async (t) => {
    const tmp = tempDir(t, { prefix: 'lading-redir-' })
    front.addFault({ method: 'GET', path: /\/redir\/app\/manifests\/v1$/, fault: { kind: 'redirect', location: manifestUrl('redir/app') }, times: 2 })
    const ins = await ladingAsync(['inspect', '--tls-verify=false', `docker://${front.host}/redir/app:v1`], { killAfterMs: 30_000 })
    assert.equal(ins.status, 0, ins.stderr)
    assert.equal(JSON.parse(ins.stdout).Digest, img.manifest.digest)
    const cp = await ladingAsync(['copy', '--quiet', '--src-tls-verify=false', `docker://${front.host}/redir/app:v1`, `oci:${path.join(tmp, 'oci')}:v1`], {
      killAfterMs: 30_000,
    })
    assert.equal(cp.status, 0, cp.stderr)
    assert.equal(front.pending(), 0)
  })

  test('inspect-repotags-refused: a registry refusing the tag listing (401) leaves RepoTags empty with a warning, as skopeo', async () => {
    front.addFault({ method: 'GET', path: /\/redir\/app\/tags\/list/, fault: { kind: 'status', status: 401 }, times: 1 })
    const r = await ladingAsync(['inspect', '--tls-verify=false', `docker://${front.host}/redir/app:v1`], { killAfterMs: 30_000 })
    assert.equal(r.status, 0, r.stderr)
    const out = JSON.parse(r.stdout)
    assert.deepEqual(out.RepoTags, [])
    assert.equal(out.Name, `${front.host}/redir/app`)
    assert.match(
      r.stderr,
      /^lading: warning: the registry does not allow listing tags; RepoTags left empty \(docker:\/\/127\.0\.0\.1:\d+\/redir\/app: GET tags list: 401 UNKNOWN: injected 401/,
    )
    assert.equal(front.pending(), 0)
    assert.deepEqual(
      JSON.parse((await ladingAsync(['inspect', '--tls-verify=false', `docker://${front.host}/redir/app:v1`], { killAfterMs: 30_000 })).stdout).RepoTags,
      ['v1'],
    )
  })

  test('manifest-redirect-loop: a manifest redirected more than 10 times is one error', async () => {
    const c = new RegistryClient({ registry: front.host, tlsVerify: false, retry })
    try {
      front.addFault({
        method: 'GET',
        path: /\/redir\/app\/manifests\/loop$/,
        fault: { kind: 'redirect', location: `${front.url}/v2/redir/app/manifests/loop` },
        times: 11,
      })
      await assert.rejects(c.getManifest('redir/app', 'loop'), (e) => oneLine(e, 'REGISTRY_ERROR', /\/redir\/app: GET manifest loop: more than 10 redirects$/))
      assert.equal(front.pending(), 0)
    } finally {
      await c.close()
    }
  })
})

describe('manifest redirects keep credentials at home', { skip }, () => {
  let reg: RunningRegistry
  let front: FaultProxy
  let cdn: FaultProxy
  let img: TestImage
  const home = tempDir({ after }, { prefix: 'lading-redir-home-' })
  before(async () => {
    reg = await startRegistry({ htpasswd: [alice] })
    front = await startFaultProxy(reg.url)
    cdn = await startFaultProxy(reg.url)
    img = makeImage({ layers: [1000] })
    const direct = new RegistryClient({ registry: reg.host, tlsVerify: false, creds: alice, env: { HOME: home } })
    try {
      await push(direct, 'sec/app', img)
    } finally {
      await direct.close()
    }
  })
  after(async () => {
    await front?.stop()
    await cdn?.stop()
    await reg?.stop()
  })

  test('security: manifest-redirect-credentials: a redirect to another host gets no Authorization; one on the same host does', async () => {
    const c = new RegistryClient({ registry: front.host, tlsVerify: false, retry, creds: alice, env: { HOME: home } })
    try {
      front.addFault({ method: 'GET', path: /\/sec\/app\/manifests\/v1$/, fault: { kind: 'redirect', location: `${cdn.url}/v2/sec/app/manifests/v1` } })
      // The other host forwards to the registry, which (rightly) refuses a request without credentials.
      await assert.rejects(c.getManifest('sec/app', 'v1'), (e) => oneLine(e, 'UNAUTHORIZED', /GET manifest v1: 401 UNAUTHORIZED/))
      assert.equal(front.requests.find((r) => r.fault === 'redirect')?.authorization, true, 'the registry itself got credentials')
      assert.deepEqual(
        cdn.requests.map((r) => r.authorization),
        [false],
        'the other host did not',
      )
      front.addFault({
        method: 'HEAD',
        path: /\/sec\/app\/manifests\/v1$/,
        fault: { kind: 'redirect', location: `${front.url}/v2/sec/app/manifests/${img.manifest.digest}` },
      })
      assert.equal((await c.headManifest('sec/app', 'v1'))?.digest, img.manifest.digest, 'a redirect on the same origin keeps the credentials')
    } finally {
      await c.close()
    }
  })
})

describe('messages a user can act on', { skip }, () => {
  let reg: RunningRegistry
  const home = tempDir({ after }, { prefix: 'lading-msg-' })
  let layout: string
  before(async () => {
    reg = await startRegistry({ htpasswd: [alice] })
    layout = path.join(home, 'oci')
    ladingOk(['init', '--layout', layout])
    ladingOk(['new', '--image', `${layout}:v1`])
  })
  after(async () => {
    await reg?.stop()
  })
  const env = (): NodeJS.ProcessEnv => ({
    HOME: home,
    XDG_RUNTIME_DIR: home,
    REGISTRY_AUTH_FILE: path.join(home, 'none.json'),
    DOCKER_CONFIG: path.join(home, 'docker'),
  })

  test('message-tls-to-plain-http: HTTPS spoken to a plain-HTTP registry says to use --tls-verify=false', () => {
    const r = lading(['inspect', `docker://${reg.host}/any/thing:v1`], { env: env() })
    assert.equal(r.status, 1)
    assert.equal(r.stderr.split('\n').length, 2, r.stderr)
    assert.match(
      r.stderr,
      /^lading: docker:\/\/127\.0\.0\.1:\d+: GET \/v2\/: (ERR_SSL_WRONG_VERSION_NUMBER: )?TLS error: wrong version number \(the registry answers in plain HTTP, not HTTPS: if it is meant to, use --tls-verify=false \(copy: --src-tls-verify=false or --dest-tls-verify=false\) or mark it insecure in registries\.conf\)\n$/,
    )
  })

  test('message-push-401: a push without credentials says they are needed and how to give them', () => {
    const r = lading(['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg.host}/msg/app:v1`], { env: env() })
    assert.equal(r.status, 1)
    assert.equal(r.stderr.split('\n').length, 2, r.stderr)
    assert.doesNotMatch(r.stderr, /HTTP 401(\)|$|\n)/)
    assert.match(
      r.stderr,
      /^lading: .*docker:\/\/127\.0\.0\.1:\d+\/msg\/app: .*(credentials are needed: |\()log in with `lading login 127\.0\.0\.1:\d+`, or give credentials with --creds \(copy: --src-creds or --dest-creds\)/,
    )
  })
})

describe('bare statuses in words', () => {
  let srv: Listening
  const home = tempDir({ after }, { prefix: 'lading-status-' })
  before(async () => {
    // A registry that answers /v2/ and then each manifest tag `sNNN` with status NNN and no body.
    const server = http.createServer((req, res) => {
      req.resume()
      const m = /\/manifests\/s(\d{3})$/.exec(req.url ?? '')
      res.writeHead(m ? Number(m[1]) : 200, { 'content-length': '0' })
      res.end()
    })
    srv = await listenOnLoopback(server)
  })
  after(async () => {
    await srv?.stop()
  })

  const cases: Array<[number, string, RegExp]> = [
    [400, 'REGISTRY_ERROR', /HTTP 400 bad request: the registry refused the request as malformed$/],
    [401, 'UNAUTHORIZED', /HTTP 401 unauthorized: credentials are needed: log in with `lading login 127\.0\.0\.1:\d+`, or give credentials with --creds/],
    [403, 'DENIED', /HTTP 403 denied: the registry refuses this without credentials: log in with `lading login 127\.0\.0\.1:\d+`/],
    [404, 'NOT_FOUND', /HTTP 404 not found: no such repository, or no such tag, digest or blob in it$/],
    [405, 'UNSUPPORTED', /HTTP 405 method not allowed: the registry does not offer this operation/],
    [429, 'NETWORK', /HTTP 429 too many requests: the registry is rate-limiting this client; try again later \(2 attempts\)$/],
    [502, 'NETWORK', /HTTP 502: the registry \(or a proxy before it\) failed with a server error \(2 attempts\)$/],
  ]
  for (const [status, code, re] of cases) {
    test(`message-status-${status}: a bare ${status} is said in words`, async () => {
      const c = new RegistryClient({ registry: srv.host, tlsVerify: false, retry, env: { HOME: home } })
      try {
        await assert.rejects(c.getManifest('st/app', `s${status}`), (e) =>
          oneLine(e, code, new RegExp(`^docker://127\\.0\\.0\\.1:\\d+/st/app: GET manifest s${status}: ${re.source}`)),
        )
      } finally {
        await c.close()
      }
    })
  }

  test('message-status-403-with-credentials: a 403 to given credentials says they lack permission', async () => {
    const c = new RegistryClient({ registry: srv.host, tlsVerify: false, retry, creds: alice, env: { HOME: home } })
    try {
      await assert.rejects(c.headManifest('st/app', 's403'), (e) =>
        oneLine(e, 'DENIED', /HEAD manifest s403: HTTP 403 denied: these credentials have no permission for this repository or operation$/),
      )
    } finally {
      await c.close()
    }
  })
})
