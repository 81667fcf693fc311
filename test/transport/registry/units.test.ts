/**
 * Pure pieces of the registry client: names, references, challenges, scopes, Link headers,
 * Retry-After, error bodies, auth files (read, write mode 0600, atomic), credential helpers.
 */
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { isLadingError } from '../../../src/errors.js'
import { parseDockerName, normalizeAuthKey, registryEndpointHost, isLoopbackRegistry } from '../../../src/transport/docker-reference.js'
import { parseRegistryReference, formatReference } from '../../../src/transport/reference.js'
import { parseChallenges } from '../../../src/transport/auth/challenge.js'
import { mergeScopes, nextLink, referrersTag } from '../../../src/transport/registry/client.js'
import { manifestMediaType } from '../../../src/spec/parse.js'
import { backoffDelay, parseRetryAfter, retryPolicy, isRetryableError } from '../../../src/transport/registry/retry.js'
import { registryError } from '../../../src/transport/registry/registry-error.js'
import {
  authFileSearchPath,
  defaultAuthFilePath,
  readAuthFile,
  removeCredentials,
  storeCredentials,
  removeAllCredentials,
} from '../../../src/transport/auth/auth-file.js'
import { parseCredsOption, resolveCredentials } from '../../../src/transport/auth/credentials.js'
import { helperGet } from '../../../src/transport/auth/credential-helper.js'
import { parseBoolFlag } from '../../../src/transport/registry/cli-options.js'
import type { Digest } from '../../../src/digest/digest.js'
import { tempDir } from '../../fixtures/temp.js'

describe('names and references', () => {
  test('docker.io and library/ defaults, as skopeo', () => {
    assert.deepEqual(parseDockerName('busybox'), { registry: 'docker.io', repository: 'library/busybox' })
    assert.deepEqual(parseDockerName('user/app'), { registry: 'docker.io', repository: 'user/app' })
    assert.deepEqual(parseDockerName('index.docker.io/busybox'), { registry: 'docker.io', repository: 'library/busybox' })
    assert.deepEqual(parseDockerName('localhost/app'), { registry: 'localhost', repository: 'app' })
    assert.deepEqual(parseDockerName('127.0.0.1:5000/a/b'), { registry: '127.0.0.1:5000', repository: 'a/b' })
    assert.equal(registryEndpointHost('docker.io'), 'registry-1.docker.io')
    assert.equal(registryEndpointHost('quay.io'), 'quay.io')
  })

  test('invalid names are INVALID_REFERENCE naming the problem', () => {
    for (const bad of ['Upper/case', 'a//b', 'host:5000/', 'a/-b', '']) {
      assert.throws(
        () => parseDockerName(bad),
        (e) => isLadingError(e, 'INVALID_REFERENCE'),
        bad,
      )
    }
  })

  test('docker:// references round-trip and reject bad tags and digests as usage errors', () => {
    const r = parseRegistryReference('docker://127.0.0.1:5000/a/b:v1')
    assert.deepEqual(r, { transport: 'docker', registry: '127.0.0.1:5000', repository: 'a/b', tag: 'v1' })
    assert.equal(formatReference(r), 'docker://127.0.0.1:5000/a/b:v1')
    const d = `sha256:${'a'.repeat(64)}`
    assert.deepEqual(parseRegistryReference(`docker://busybox@${d}`), { transport: 'docker', registry: 'docker.io', repository: 'library/busybox', digest: d })
    assert.deepEqual(parseRegistryReference('docker://localhost:5000/x'), { transport: 'docker', registry: 'localhost:5000', repository: 'x' })
    for (const bad of ['docker://a:-bad', 'docker://a@sha256:1234', 'docker:a', 'docker://', `docker://a:${'t'.repeat(129)}`]) {
      assert.throws(
        () => parseRegistryReference(bad),
        (e) => isLadingError(e, 'USAGE') && /expected|invalid/.test((e as Error).message),
        bad,
      )
    }
  })

  test('auth keys normalise to registry names', () => {
    assert.equal(normalizeAuthKey('https://index.docker.io/v1/'), 'docker.io')
    assert.equal(normalizeAuthKey('http://host:5000/v2/'), 'host:5000')
    assert.equal(normalizeAuthKey('quay.io'), 'quay.io')
    assert.equal(isLoopbackRegistry('127.0.0.1:5000'), true)
    assert.equal(isLoopbackRegistry('localhost'), true)
    assert.equal(isLoopbackRegistry('example.com:5000'), false)
  })
})

describe('protocol details', () => {
  test('WWW-Authenticate: bearer with quoted params, several challenges, junk does not throw', () => {
    const [c] = parseChallenges(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push",error="insufficient_scope"',
    )
    assert.equal(c!.scheme, 'bearer')
    assert.deepEqual(c!.params, {
      realm: 'https://auth.example/token',
      service: 'registry.example',
      scope: 'repository:a/b:pull,push',
      error: 'insufficient_scope',
    })
    const both = parseChallenges(['Basic realm="x"', 'Bearer realm="y", service=z'])
    assert.deepEqual(
      both.map((x) => x.scheme),
      ['basic', 'bearer'],
    )
    assert.equal(both[1]!.params.service, 'z')
    assert.deepEqual(parseChallenges(undefined), [])
    parseChallenges('"=,,=""\\')
    parseChallenges('x'.repeat(100_000))
  })

  test('scopes merge per repository (pull+push, mount source)', () => {
    assert.deepEqual(mergeScopes(['repository:a:pull', 'repository:a:pull,push', 'repository:b:pull']), ['repository:a:pull,push', 'repository:b:pull'])
    assert.deepEqual(mergeScopes(['repository:a:pull', 'repository:a:delete']), ['repository:a:pull,delete'])
  })

  test('Link rel="next" (RFC 8288), referrers tag schema', () => {
    assert.equal(nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"'), '/v2/a/tags/list?n=2&last=b')
    assert.equal(nextLink('<https://x/1>; rel="prev", <https://x/2>; rel=next'), 'https://x/2')
    assert.equal(nextLink('<https://x/1>; rel="prev"'), undefined)
    assert.equal(nextLink(undefined), undefined)
    assert.equal(referrersTag(`sha256:${'b'.repeat(64)}` as Digest), `sha256-${'b'.repeat(64)}`)
    assert.equal(referrersTag(`sha512:${'c'.repeat(128)}` as Digest), `sha512-${'c'.repeat(64)}`)
  })

  test('Retry-After seconds and HTTP-date; backoff bounded by the cap', () => {
    assert.equal(parseRetryAfter('3'), 3000)
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 5000), 5000)
    assert.equal(parseRetryAfter('soon'), undefined)
    const p = retryPolicy({ baseDelayMs: 100, maxDelayMs: 300 })
    for (let i = 1; i < 10; i++) assert.ok(backoffDelay(p, i) <= 300)
    assert.equal(backoffDelay(p, 1, 60_000), 300, 'Retry-After is capped')
    assert.ok(isRetryableError(Object.assign(new Error('x'), { cause: Object.assign(new Error('y'), { code: 'ECONNRESET' }) })))
    assert.ok(!isRetryableError(new Error('digest mismatch')))
  })

  test('registry error bodies become one line with the spec code', () => {
    const body = Buffer.from(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access\nto the resource is denied' }] }))
    const e = registryError('docker://r/a: PUT manifest v1', 403, body)
    assert.equal(e.code, 'DENIED')
    assert.equal(e.message, 'docker://r/a: PUT manifest v1: 403 DENIED: requested access to the resource is denied')
    assert.equal(registryError('w', 401, body, { basicCredentials: true }).message, 'w: UNAUTHORIZED: wrong username or password')
    const html = registryError('w', 502, Buffer.from('<html>\r\n<b>bad gateway</b></html>'))
    assert.equal(html.code, 'NETWORK')
    assert.doesNotMatch(html.message, /[\r\n]/)
    assert.equal(
      registryError('w', 404, Buffer.from(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }))).code,
      'NAME_UNKNOWN',
    )
  })

  test('manifest media type from the document when Content-Type is generic', () => {
    // The client uses the one sniffer of spec/parse.ts (test/spec/referrer.test.ts shows where its own copy differed).
    assert.equal(manifestMediaType(Buffer.from('{"schemaVersion":2,"manifests":[]}'), 'm'), 'application/vnd.oci.image.index.v1+json')
    assert.equal(manifestMediaType(Buffer.from('{"schemaVersion":2,"config":{}}'), 'm'), 'application/vnd.oci.image.manifest.v1+json')
    assert.throws(
      () => manifestMediaType(Buffer.from('[1]'), 'm'),
      (e) => isLadingError(e, 'INVALID_DOCUMENT'),
    )
    assert.throws(
      () => manifestMediaType(Buffer.from('{'), 'm'),
      (e) => isLadingError(e, 'INVALID_JSON'),
    )
  })

  test('--creds and --tls-verify values', () => {
    assert.deepEqual(parseCredsOption('u:p:q'), { username: 'u', password: 'p:q' })
    assert.deepEqual(parseCredsOption('u'), { username: 'u', password: '' })
    assert.throws(
      () => parseCredsOption(':p'),
      (e) => isLadingError(e, 'USAGE'),
    )
    assert.equal(parseBoolFlag('false', '--tls-verify', true), false)
    assert.equal(parseBoolFlag(true, '--tls-verify', false), true)
    assert.equal(parseBoolFlag(undefined, '--tls-verify', true), true)
    assert.throws(
      () => parseBoolFlag('maybe', '--tls-verify', true),
      (e) => isLadingError(e, 'USAGE'),
    )
  })
})

test('security: repository names and references are validated before they reach a URL path', async () => {
  const { RegistryClient } = await import('../../../src/transport/registry/client.js')
  const c = new RegistryClient({ registry: '127.0.0.1:9', tlsVerify: false, retry: { attempts: 1 } })
  try {
    for (const repo of ['a/../../v2/_catalog', 'a?x=1', 'A', '']) {
      await assert.rejects(c.getManifest(repo, 'latest'), (e) => isLadingError(e, 'INVALID_REFERENCE'), repo)
      await assert.rejects(c.listTags(repo), (e) => isLadingError(e, 'INVALID_REFERENCE'), repo)
    }
    for (const ref of ['../x', 'a/b', 'sha256:zz', '']) {
      await assert.rejects(c.getManifest('a/b', ref), (e) => isLadingError(e, 'INVALID_REFERENCE'), ref)
    }
    await assert.rejects(c.mountBlob('a', `sha256:${'a'.repeat(64)}` as Digest, '../b'), (e) => isLadingError(e, 'INVALID_REFERENCE'))
  } finally {
    await c.close()
  }
})

describe('auth files and credential helpers', () => {
  const tmp = tempDir({ after }, { prefix: 'lading-creds-' })

  test('login file location: --authfile, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, then ~/.config', () => {
    assert.equal(defaultAuthFilePath('/x.json', { env: { REGISTRY_AUTH_FILE: '/y.json' } }), '/x.json')
    assert.equal(defaultAuthFilePath(undefined, { env: { REGISTRY_AUTH_FILE: '/y.json', XDG_RUNTIME_DIR: '/run/u' } }), '/y.json')
    assert.equal(defaultAuthFilePath(undefined, { env: { XDG_RUNTIME_DIR: '/run/u' } }), '/run/u/containers/auth.json')
    assert.equal(defaultAuthFilePath(undefined, { env: { HOME: '/h' } }), '/h/.config/containers/auth.json')
    assert.deepEqual(authFileSearchPath(undefined, { env: { HOME: '/h' } }), ['/h/.config/containers/auth.json', '/h/.docker/config.json'])
    assert.deepEqual(authFileSearchPath(undefined, { env: { HOME: '/h', DOCKER_CONFIG: '/d' } }), ['/h/.config/containers/auth.json', '/d/config.json'])
  })

  test('security: stored credentials are written atomically with mode 0600, other fields kept, logout removes them', async () => {
    const file = path.join(tmp, 'sub', 'auth.json')
    await fsp.mkdir(path.dirname(file), { recursive: true })
    await fsp.writeFile(file, JSON.stringify({ auths: { 'other.io': { auth: 'eDp5' } }, credHelpers: { 'h.io': 'pass' }, keepMe: 1 }), { mode: 0o644 })
    await storeCredentials(file, 'reg.example:5000', { username: 'u', password: 'p:w' })
    const st = await fsp.stat(file)
    assert.equal(st.mode & 0o777, 0o600)
    const f = await readAuthFile(file)
    assert.equal(f!.keepMe, 1)
    assert.deepEqual(f!.credHelpers, { 'h.io': 'pass' })
    assert.equal(Buffer.from(f!.auths!['reg.example:5000']!.auth!, 'base64').toString(), 'u:p:w')
    assert.deepEqual(await fsp.readdir(path.dirname(file)), ['auth.json'], 'no temp file left behind')
    assert.deepEqual(await resolveCredentials('reg.example:5000', { authFile: file, env: { HOME: tmp } }), { username: 'u', password: 'p:w' })
    assert.equal(await removeCredentials(file, 'reg.example:5000'), true)
    assert.equal(await removeCredentials(file, 'reg.example:5000'), false)
    assert.ok((await readAuthFile(file))!.auths!['other.io'])
    assert.equal(await removeAllCredentials(file), true)
    assert.deepEqual((await readAuthFile(file))!.auths, {})
  })

  /**
   * A HOME with ~/.docker/config.json, a bin directory of fake docker-credential-<name> helpers
   * (each a shell body), and an env that finds them, with no registries.conf (a path that does
   * not exist), so nothing depends on this machine's files.
   */
  async function helperHome(name: string, helpers: Record<string, string>, dockerConfig: object): Promise<{ env: NodeJS.ProcessEnv }> {
    const home = path.join(tmp, `home-${name}`)
    const bin = path.join(tmp, `bin-${name}`)
    await fsp.mkdir(path.join(home, '.docker'), { recursive: true })
    await fsp.mkdir(bin, { recursive: true })
    for (const [helper, body] of Object.entries(helpers))
      await fsp.writeFile(path.join(bin, `docker-credential-${helper}`), `#!/bin/sh\n${body}\n`, { mode: 0o755 })
    await fsp.writeFile(path.join(home, '.docker', 'config.json'), JSON.stringify(dockerConfig))
    return { env: { HOME: home, PATH: `${bin}:${process.env.PATH}`, CONTAINERS_REGISTRIES_CONF: path.join(tmp, 'none.conf') } }
  }

  test('docker config: auths keyed by URL, credsStore helper, precedence credHelpers > auths > credsStore', async () => {
    const { env } = await helperHome(
      'plain',
      {
        store1:
          'read s\nif [ "$s" = "store.io" ]; then printf \'{"Username":"st","Secret":"sp"}\'; else echo "credentials not found in native keychain"; exit 1; fi',
        h1: 'printf \'{"Username":"hu","Secret":"hp"}\'',
        tok: 'printf \'{"Username":"<token>","Secret":"refresh-me"}\'',
      },
      {
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') },
          'helped.io': { auth: Buffer.from('no:no').toString('base64') },
        },
        credHelpers: { 'helped.io': 'h1', 'oauth.io': 'tok' },
        credsStore: 'store1',
      },
    )
    assert.deepEqual(await resolveCredentials('docker.io', { env }), { username: 'hub', password: 'pw' })
    assert.deepEqual(await resolveCredentials('helped.io', { env }), { username: 'hu', password: 'hp' })
    assert.deepEqual(await resolveCredentials('store.io', { env }), { username: 'st', password: 'sp' })
    assert.equal(await resolveCredentials('nothing.io', { env }), undefined)
    assert.deepEqual(
      await resolveCredentials('oauth.io', { env }),
      { username: '', password: '', identityToken: 'refresh-me' },
      'a <token> user is an identity token',
    )
    assert.deepEqual(
      await resolveCredentials('helped.io', { env, creds: { username: 'x', password: 'y' } }),
      { username: 'x', password: 'y' },
      'explicit creds win',
    )
  })

  test('registries.conf credential-helpers: tried in order, containers-auth.json standing for the auth files', async () => {
    const asked = path.join(tmp, 'asked')
    const { env } = await helperHome(
      'ch',
      {
        vault:
          'read s\nif [ "$s" = "vault.io" ] || [ "$s" = "both.io" ]; then printf \'{"Username":"vu","Secret":"vp"}\'; else echo "credentials not found"; exit 1; fi',
        recorder: `cat > '${asked}'\nprintf '{"Username":"r","Secret":"s"}'`,
      },
      { auths: { 'both.io': { auth: Buffer.from('fu:fp').toString('base64') }, 'file.io': { auth: Buffer.from('fu:fp').toString('base64') } } },
    )
    const vaultFirst = ['vault', 'containers-auth.json']
    assert.deepEqual(
      await resolveCredentials('both.io', { env, credentialHelpers: vaultFirst }),
      { username: 'vu', password: 'vp' },
      'the first helper that knows the registry wins',
    )
    assert.deepEqual(
      await resolveCredentials('file.io', { env, credentialHelpers: vaultFirst }),
      { username: 'fu', password: 'fp' },
      'a helper without it passes to the next',
    )
    assert.deepEqual(await resolveCredentials('both.io', { env, credentialHelpers: ['containers-auth.json', 'vault'] }), { username: 'fu', password: 'fp' })
    assert.equal(await resolveCredentials('file.io', { env, credentialHelpers: ['vault'] }), undefined, 'the auth files are read only when listed')
    assert.deepEqual(await resolveCredentials('file.io', { env }), { username: 'fu', password: 'fp' }, 'default: the auth files')
    await assert.rejects(resolveCredentials('x.io', { env, credentialHelpers: ['../evil'] }), (e) => isLadingError(e, 'USAGE'))
    // A helper that is not installed (or fails) is passed over, as containers/image does; its
    // error counts only when no helper has the credentials.
    assert.deepEqual(await resolveCredentials('file.io', { env, credentialHelpers: ['missing', 'containers-auth.json'] }), { username: 'fu', password: 'fp' })
    await assert.rejects(
      resolveCredentials('nowhere.io', { env, credentialHelpers: ['missing', 'vault'] }),
      (e) => isLadingError(e, 'UNAUTHORIZED') && /docker-credential-missing not found/.test((e as Error).message),
    )
    await assert.rejects(resolveCredentials('file.io', { env, credentialHelpers: ['missing'] }), (e) => isLadingError(e, 'NOT_FOUND'))
    // These helpers are asked about Docker Hub as docker.io (containers/image's key), where
    // docker config's helpers get docker's https://index.docker.io/v1/.
    assert.deepEqual(await resolveCredentials('docker.io', { env, credentialHelpers: ['recorder'] }), { username: 'r', password: 's' })
    assert.equal(await fsp.readFile(asked, 'utf8'), 'docker.io')
    // The list comes from the registries.conf that env names.
    const conf = path.join(tmp, 'ch.conf')
    await fsp.writeFile(conf, 'credential-helpers = ["vault"]\n')
    assert.equal(await resolveCredentials('file.io', { env: { ...env, CONTAINERS_REGISTRIES_CONF: conf } }), undefined)
    assert.deepEqual(await resolveCredentials('vault.io', { env: { ...env, CONTAINERS_REGISTRIES_CONF: conf } }), { username: 'vu', password: 'vp' })
  })

  test('security: a credential helper name with a path is refused; a failing helper is one line', async () => {
    await assert.rejects(helperGet('../../bin/sh', 'x'), (e) => isLadingError(e, 'USAGE'))
    await assert.rejects(
      helperGet('lading-no-such-helper', 'x', { env: { PATH: tmp } }),
      (e) => isLadingError(e, 'NOT_FOUND') && /docker-credential-lading-no-such-helper/.test((e as Error).message),
    )
    const bin = path.join(tmp, 'bin2')
    await fsp.mkdir(bin, { recursive: true })
    await fsp.writeFile(path.join(bin, 'docker-credential-bad'), '#!/bin/sh\necho "boom\nmore" >&2\nexit 7\n', { mode: 0o755 })
    await assert.rejects(
      helperGet('bad', 'x', { env: { PATH: bin } }),
      (e) => isLadingError(e, 'UNAUTHORIZED') && /exited with 7: boom more/.test((e as Error).message),
    )
    await fsp.writeFile(path.join(bin, 'docker-credential-junk'), '#!/bin/sh\necho "not json"\n', { mode: 0o755 })
    await assert.rejects(helperGet('junk', 'x', { env: { PATH: bin } }), (e) => isLadingError(e, 'INVALID_JSON'))
  })

  test('a malformed auth file is INVALID_JSON naming the file', async () => {
    const file = path.join(tmp, 'bad.json')
    await fsp.writeFile(file, '{"auths": [1]}')
    await assert.rejects(readAuthFile(file), (e) => isLadingError(e, 'INVALID_JSON') && (e as Error).message.includes(file))
    await fsp.writeFile(file, '{nope')
    await assert.rejects(resolveCredentials('x.io', { authFile: file, env: { HOME: tmp } }), (e) => isLadingError(e, 'INVALID_JSON'))
  })
})
