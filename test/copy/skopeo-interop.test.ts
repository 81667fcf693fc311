/**
 * Interoperability with skopeo: skopeo reads what Lading wrote (`skopeo inspect`, `skopeo copy`
 * to an OCI layout) and Lading reads what skopeo wrote, for oci, oci-archive, docker-archive, dir
 * and docker:// (a local docker-registry). Configs and diff_ids agree everywhere; manifest
 * digests agree wherever the format did not change (everything but docker-archive).
 */
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, before, test, type TestContext } from 'node:test'
import { ladingOk, runOk } from '../helpers/cli.js'
import { registryMissing, startRegistry, type RunningRegistry } from '../helpers/registry.js'
import { findTool, requireTool } from '../helpers/tools.js'
import { seeImage, type Seen } from './inspect.js'
import { initImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-skopeo-' })
let origin: Seen
let registry: RunningRegistry | undefined
const regMissing = registryMissing()

function refs(base: string): Record<string, string> {
  const out: Record<string, string> = {
    oci: `oci:${base}-oci:t`,
    'oci-archive': `oci-archive:${base}-oa.tar:t`,
    'docker-archive': `docker-archive:${base}-da.tar:example/app:t`,
    dir: `dir:${base}-dir`,
  }
  if (registry) out.docker = `docker://${registry.host}/interop/${path.basename(base)}:t`
  return out
}

function skopeo(args: string[]): string {
  const tls = args.some((a) => a.startsWith('docker://'))
    ? args[0] === 'copy'
      ? ['--src-tls-verify=false', '--dest-tls-verify=false']
      : ['--tls-verify=false']
    : []
  return runOk('skopeo', [args[0]!, ...tls, ...args.slice(1)]).stdout
}

before(async () => {
  await initImage(path.join(tmp, 'origin'), {}, 't')
  origin = await seeImage(`oci:${path.join(tmp, 'origin')}:t`)
  if (!regMissing && findTool('skopeo')) registry = await startRegistry()
})
after(async () => {
  await registry?.stop()
})

function checkSkopeoView(t: TestContext, transport: string, ref: string, expectDigest: string | undefined): void {
  const raw = skopeo(['inspect', '--raw', ref])
  const config = skopeo(['inspect', '--config', '--raw', ref])
  assert.equal(config, origin.configBytes, `${transport}: skopeo sees the same config bytes`)
  const info = JSON.parse(skopeo(['inspect', ref])) as { Digest: string; Layers: string[] }
  const manifest = JSON.parse(raw) as { layers: Array<{ digest: string }> }
  assert.equal(manifest.layers.length, origin.diffIds.length, `${transport}: layer count`)
  if (expectDigest) assert.equal(info.Digest, expectDigest, `${transport}: skopeo computes the manifest digest Lading reported`)
  t.diagnostic(`${transport}: skopeo inspect ok (${info.Digest})`)
}

test('skopeo reads what Lading wrote (inspect, and copy into an OCI layout)', async (t) => {
  if (!requireTool(t, 'skopeo')) return
  if (regMissing) t.diagnostic(`docker:// left out: ${regMissing}`)
  for (const [transport, ref] of Object.entries(refs(path.join(tmp, 'by-lading')))) {
    const out = ladingOk([
      'copy',
      '-q',
      '--dest-tls-verify=false',
      '--digestfile',
      path.join(tmp, `${transport}.digest`),
      `oci:${path.join(tmp, 'origin')}:t`,
      ref,
    ])
    assert.equal(out.stdout, '', 'copy prints nothing on stdout')
    const digest = await fsp.readFile(path.join(tmp, `${transport}.digest`), 'utf8')
    if (transport !== 'docker-archive') assert.equal(digest, origin.manifestDigest, `${transport}: digest preserved`)
    checkSkopeoView(t, transport, ref, transport === 'docker-archive' ? undefined : digest)
    // skopeo copies it into a layout; Lading reads that back and the image is the same.
    const back = `oci:${path.join(tmp, `skopeo-back-${transport}`)}:t`
    skopeo(['copy', '-q', ref, back])
    const seen = await seeImage(back)
    assert.equal(seen.configDigest, origin.configDigest, `${transport}: config`)
    assert.deepEqual(seen.diffIds, origin.diffIds, `${transport}: diff_ids`)
    if (transport !== 'docker-archive') assert.equal(seen.manifestDigest, origin.manifestDigest, `${transport}: manifest digest after skopeo copy`)
  }
})

test('Lading reads what skopeo wrote', async (t) => {
  if (!requireTool(t, 'skopeo')) return
  for (const [transport, ref] of Object.entries(refs(path.join(tmp, 'by-skopeo')))) {
    skopeo(['copy', '-q', `oci:${path.join(tmp, 'origin')}:t`, ref])
    const seen = await seeImage(ref, { tlsVerify: false })
    assert.equal(seen.configDigest, origin.configDigest, `${transport}: config digest`)
    assert.equal(seen.configBytes, origin.configBytes, `${transport}: config bytes`)
    assert.deepEqual(seen.diffIds, origin.diffIds, `${transport}: diff_ids`)
    if (transport !== 'docker-archive') {
      assert.equal(seen.manifestDigest, origin.manifestDigest, `${transport}: manifest digest`)
    } else {
      // skopeo's archive keeps uncompressed layers: their digests are the diff_ids.
      assert.deepEqual(
        seen.layers.map((l) => l.digest),
        origin.diffIds,
      )
    }
    // And Lading copies it on, verified end to end.
    const to = `oci:${path.join(tmp, `lading-back-${transport}`)}:t`
    ladingOk(['copy', '-q', '--src-tls-verify=false', ref, to])
    assert.deepEqual((await seeImage(to)).diffIds, origin.diffIds)
  }
})
