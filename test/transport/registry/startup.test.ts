/**
 * What `lading copy` does before its first byte moves, which is most of a short copy's time:
 * the modules it loads (a copy that moves blobs as they are loads no zlib, and against a
 * plain-HTTP registry no TLS), and the requests it makes before the first
 * real one (one GET /v2/, begun while the source is still being read).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import http from 'node:http'
import { listenOnLoopback, type Listening } from '../../helpers/loopback.js'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { isLadingError } from '../../../src/errors.js'
import { registrySource } from '../../../src/transport/registry/source.js'
import { cliPath } from '../../helpers/cli.js'
import { freePort, startRegistry, registryAvailable, type RunningRegistry } from '../../helpers/registry.js'
import { initImage } from '../../fixtures/image.js'
import { tempDir } from '../../fixtures/temp.js'

const skip = registryAvailable() ? false : process.env.CI === 'true' ? false : 'docker-registry not installed'

/** Run the CLI and return the built-in modules it loaded (process.moduleLoadList at exit). */
function builtinsLoaded(args: string[]): { status: number | null; stderr: string; builtins: Set<string> } {
  const hook = `process.on('exit', () => process.stderr.write('\\nMODULES ' + JSON.stringify(process.moduleLoadList) + '\\n'))`
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, cliPath, ...args], {
    encoding: 'utf8',
    env: { ...process.env, HOME: '/nonexistent', REGISTRY_AUTH_FILE: '', DOCKER_CONFIG: '', XDG_RUNTIME_DIR: '' },
  })
  const m = /\nMODULES (.*)\n/.exec(r.stderr)
  const list = m ? (JSON.parse(m[1]!) as string[]) : []
  return {
    status: r.status,
    stderr: r.stderr,
    builtins: new Set(list.filter((x) => x.startsWith('NativeModule ')).map((x) => x.slice('NativeModule '.length))),
  }
}

describe('copy start-up: modules loaded', { skip }, () => {
  let reg: RunningRegistry
  const tmp = tempDir({ after }, { prefix: 'lading-startup-' })
  before(async () => {
    reg = await startRegistry()
    await initImage(path.join(tmp, 'src'), {}, 'v1')
  })
  after(async () => {
    await reg?.stop()
  })

  test('a push to a plain-HTTP registry loads neither TLS nor zlib; a pull neither', () => {
    const push = builtinsLoaded(['copy', '-q', '--dest-tls-verify=false', `oci:${path.join(tmp, 'src')}:v1`, `docker://${reg.host}/startup/img:v1`])
    assert.equal(push.status, 0, push.stderr)
    assert.ok(push.builtins.has('http'), 'the check sees what was loaded')
    for (const m of ['tls', 'https', 'zlib']) assert.ok(!push.builtins.has(m), `push loaded ${m}`)
    const pull = builtinsLoaded(['copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/startup/img:v1`, `oci:${path.join(tmp, 'pulled')}:v1`])
    assert.equal(pull.status, 0, pull.stderr)
    for (const m of ['tls', 'https', 'zlib']) assert.ok(!pull.builtins.has(m), `pull loaded ${m}`)
  })

  test('a recompressing copy does load zlib (the lazy load is taken when needed)', () => {
    const r = builtinsLoaded([
      'copy',
      '-q',
      '--dest-compress-format',
      'gzip',
      '--dest-compress-level',
      '1',
      `oci:${path.join(tmp, 'src')}:v1`,
      `oci:${path.join(tmp, 'regz')}:v1`,
    ])
    assert.equal(r.status, 0, r.stderr)
    assert.ok(r.builtins.has('zlib'))
  })
})

describe('copy start-up: requests before the first real one', () => {
  const seen: string[] = []
  let server: http.Server
  let host: string
  let listening: Listening
  before(async () => {
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`)
      req.resume()
      req.on('end', () => {
        if (req.url === '/v2/') {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end('{}')
          return
        }
        res.writeHead(404, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'no' }] }))
      })
    })
    listening = await listenOnLoopback(server)
    host = listening.host
  })
  after(() => listening.stop())

  test('opening a registry source starts the GET /v2/ at once; the plain-HTTP probe is that ping (one GET /v2/ in all)', async () => {
    seen.length = 0
    const src = await registrySource({ transport: 'docker', registry: host, repository: 'p', tag: 'x' }, { tlsVerify: false, retry: { attempts: 1 } })
    try {
      for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(10)
      assert.deepEqual(seen, ['GET /v2/'], 'the connection is warmed up before any request is made')
      await assert.rejects(src.getManifest(), (e) => isLadingError(e, 'MANIFEST_UNKNOWN'))
      assert.deepEqual(seen, ['GET /v2/', 'GET /v2/p/manifests/x'])
    } finally {
      await src.close()
    }
  })

  test('a warm-up that fails is not an unhandled rejection: the first real request reports the failure', async () => {
    const dead = `127.0.0.1:${await freePort()}`
    const src = await registrySource({ transport: 'docker', registry: dead, repository: 'p', tag: 'x' }, { tlsVerify: false, retry: { attempts: 1 } })
    try {
      await sleep(50)
      await assert.rejects(src.getManifest(), (e) => isLadingError(e, 'NETWORK'))
    } finally {
      await src.close()
    }
  })
})
