/**
 * HTTP(S) proxies: the client tunnels through a CONNECT proxy when one is configured, and the
 * environment rule never proxies loopback registries.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { RegistryClient, proxySettings } from '../../../src/transport/registry/client.js'
import { startRegistry, registryAvailable, type RunningRegistry } from '../../helpers/registry.js'
import { MONOLITHIC_MAX } from '../../../src/transport/registry/blob-upload.js'
import { buffer } from 'node:stream/consumers'
import { makeImage, stream } from '../../fixtures/image.js'

const skip = registryAvailable() ? false : process.env.CI === 'true' ? false : 'docker-registry not installed'

test('proxy settings from the environment exclude loopback hosts; explicit settings are used as given', () => {
  assert.equal(proxySettings(undefined, {}), undefined)
  assert.deepEqual(proxySettings(undefined, { https_proxy: 'http://p:3128', NO_PROXY: 'corp.example' }), {
    httpsProxy: 'http://p:3128',
    noProxy: 'corp.example,localhost,127.0.0.1,::1',
  })
  assert.deepEqual(proxySettings({ httpProxy: 'http://q:1' }, { HTTP_PROXY: 'http://ignored' }), { httpProxy: 'http://q:1', noProxy: '' })
})

describe('CONNECT proxy', { skip }, () => {
  let reg: RunningRegistry
  let proxy: http.Server
  let proxyUrl: string
  const connects: string[] = []
  const sockets = new Set<net.Socket>()
  before(async () => {
    reg = await startRegistry()
    proxy = http.createServer((_req, res) => {
      res.writeHead(405)
      res.end()
    })
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      connects.push(req.url ?? '')
      const [host, port] = (req.url ?? '').split(':')
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        if (head.length) upstream.write(head)
        upstream.pipe(client)
        client.pipe(upstream)
      })
      sockets.add(client)
      sockets.add(upstream)
      upstream.on('error', () => client.destroy())
      client.on('error', () => upstream.destroy())
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`
  })
  after(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => proxy.close(() => resolve()))
    await reg?.stop()
  })

  test('push (a small blob in one PUT, a large one streamed) and pull through the proxy tunnel', async () => {
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false, proxy: { httpProxy: proxyUrl, httpsProxy: proxyUrl, noProxy: '' } })
    try {
      const img = makeImage({ layers: [5000, MONOLITHIC_MAX + 1000] })
      for (const b of [img.config, ...img.layers]) await c.putBlob('proxy/app', stream(b.bytes, 64 * 1024), b.desc)
      await c.putManifest('proxy/app', 'v1', img.manifest)
      for (const l of img.layers) assert.deepEqual(await buffer(await c.getBlob('proxy/app', l.desc)), l.bytes)
      assert.ok(connects.length >= 1)
      assert.ok(
        connects.every((u) => u === reg.host),
        connects.join(','),
      )
    } finally {
      await c.close()
    }
  })
})
