/**
 * TLS against a docker-registry serving HTTPS with a certificate made by openssl: the system
 * CAs alone refuse it (one line), a --cert-dir with its `*.crt` accepts it, a `*.cert`/`*.key`
 * pair is presented as the client certificate when the registry demands one, and
 * tlsVerify=false reaches it without verification. NODE_EXTRA_CA_CERTS is trusted by the command.
 */
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { RegistryClient } from '../../../src/transport/registry/client.js'
import { isLadingError } from '../../../src/errors.js'
import { startRegistry, registryAvailable, type RunningRegistry } from '../../helpers/registry.js'
import { MONOLITHIC_MAX } from '../../../src/transport/registry/blob-upload.js'
import { lading } from '../../helpers/cli.js'
import { buffer } from 'node:stream/consumers'
import { makeImage, stream } from '../../fixtures/image.js'
import { tempDir } from '../../fixtures/temp.js'
import { selfSigned } from '../../fixtures/tls.js'

const skip = registryAvailable() ? false : process.env.CI === 'true' ? false : 'docker-registry not installed'
const fast = { attempts: 2, baseDelayMs: 5, maxDelayMs: 20 }

describe('TLS registry', { skip }, () => {
  const tmp = tempDir({ after }, { prefix: 'lading-tls-' })
  let reg: RunningRegistry
  let server: { cert: string; key: string }
  let clientPair: { cert: string; key: string }
  before(async () => {
    server = selfSigned(tmp, 'server', 'lading-test-registry')
    clientPair = selfSigned(tmp, 'client', 'lading-test-client')
    reg = await startRegistry({ tls: { certificate: server.cert, key: server.key } })
  })
  after(async () => {
    await reg?.stop()
  })

  test('system CAs only: the self-signed certificate is refused in one line', async () => {
    const c = new RegistryClient({ registry: reg.host, retry: fast, certDir: path.join(tmp, 'empty') })
    await fsp.mkdir(path.join(tmp, 'empty'), { recursive: true })
    try {
      await assert.rejects(c.listTags('tls/app'), (e) => {
        assert.ok(isLadingError(e, 'NETWORK'), String(e))
        assert.match((e as Error).message, /self[- ]signed|certificate/i)
        assert.doesNotMatch((e as Error).message, /\n/)
        return true
      })
    } finally {
      await c.close()
    }
  })

  test('--cert-dir with the CA as *.crt: push (a small blob in one PUT, a large one streamed) and pull over verified HTTPS', async () => {
    const dir = path.join(tmp, 'certs.d')
    await fsp.mkdir(dir, { recursive: true })
    await fsp.copyFile(server.cert, path.join(dir, 'ca.crt'))
    const c = new RegistryClient({ registry: reg.host, retry: fast, certDir: dir })
    try {
      const img = makeImage({ layers: [3000, MONOLITHIC_MAX + 1000] })
      for (const b of [img.config, ...img.layers]) await c.putBlob('tls/app', stream(b.bytes, 64 * 1024), b.desc)
      await c.putManifest('tls/app', 'v1', img.manifest)
      for (const l of img.layers) assert.deepEqual(await buffer(await c.getBlob('tls/app', l.desc)), l.bytes)
    } finally {
      await c.close()
    }
  })

  // bin/lading moves NODE_EXTRA_CA_CERTS aside for Node's start (src/transport/registry/extra-ca.ts);
  // the file's certificates must still be trusted, as Node trusts them, from both starts.
  for (const snapshot of ['1', '0']) {
    test(`NODE_EXTRA_CA_CERTS is trusted by the lading command though Node starts without it (LADING_SNAPSHOT=${snapshot})`, () => {
      const env = { LADING_SNAPSHOT: snapshot, HOME: tmp, REGISTRY_AUTH_FILE: '', DOCKER_CONFIG: '' }
      const ok = lading(['list-tags', `docker://${reg.host}/tls/app`], { env: { ...env, NODE_EXTRA_CA_CERTS: server.cert } })
      assert.equal(ok.status, 0, ok.stderr)
      assert.deepEqual(JSON.parse(ok.stdout).Tags, ['v1'])
      const without = lading(['list-tags', `docker://${reg.host}/tls/app`], { env: { ...env, NODE_EXTRA_CA_CERTS: '' } })
      assert.equal(without.status, 1)
      assert.match(without.stderr, /^lading: .*(self[- ]signed|certificate)/i)
      const missing = lading(['list-tags', `docker://${reg.host}/tls/app`], { env: { ...env, NODE_EXTRA_CA_CERTS: path.join(tmp, 'no-such.pem') } })
      assert.equal(missing.status, 1)
      assert.match(missing.stderr, /Ignoring extra certs from `.*no-such\.pem`, load failed/)
      assert.match(missing.stderr, /^lading: .*(self[- ]signed|certificate)/im)
    })
  }

  test('tlsVerify=false on a loopback TLS registry: HTTP is tried, HTTPS without verification is used', async () => {
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false, retry: fast })
    try {
      assert.deepEqual(await c.listTags('tls/app'), ['v1'])
    } finally {
      await c.close()
    }
  })

  test('client certificate: a *.cert/*.key pair in the cert dir is presented to a registry that requires one', async () => {
    const mtls = await startRegistryWithClientCa(server, clientPair.cert)
    const dir = path.join(tmp, 'mtls.d')
    await fsp.mkdir(dir, { recursive: true })
    await fsp.copyFile(server.cert, path.join(dir, 'ca.crt'))
    try {
      const without = new RegistryClient({ registry: mtls.host, retry: fast, certDir: dir })
      try {
        await assert.rejects(without.listTags('tls/app'), (e) => isLadingError(e, 'NETWORK'))
      } finally {
        await without.close()
      }
      await fsp.copyFile(clientPair.cert, path.join(dir, 'client.cert'))
      await fsp.copyFile(clientPair.key, path.join(dir, 'client.key'))
      const withCert = new RegistryClient({ registry: mtls.host, retry: fast, certDir: dir })
      try {
        await assert.rejects(withCert.listTags('tls/none'), (e) => isLadingError(e, 'NAME_UNKNOWN'), 'the TLS handshake passed; the registry answered')
      } finally {
        await withCert.close()
      }
      await fsp.rm(path.join(dir, 'client.key'))
      const broken = new RegistryClient({ registry: mtls.host, retry: fast, certDir: dir })
      try {
        await assert.rejects(broken.listTags('tls/none'), (e) => isLadingError(e, 'NOT_FOUND') && /no matching key/.test((e as Error).message))
      } finally {
        await broken.close()
      }
    } finally {
      await mtls.stop()
    }
  })
})

/** A TLS registry that requires client certificates signed by `clientCa` (http.tls.clientcas). */
async function startRegistryWithClientCa(server: { cert: string; key: string }, clientCa: string): Promise<RunningRegistry> {
  return startRegistry({ tls: { certificate: server.cert, key: server.key, clientCas: [clientCa] } })
}
