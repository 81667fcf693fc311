/**
 * `lading inspect REF` over transports, checked against `skopeo inspect` of the same reference:
 * a docker:// image in a real docker-registry, and a docker-archive written by Lading.
 */
import { test, before, after, describe } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { lading, ladingOk, runOk } from '../helpers/cli.js'
import { RegistryClient } from '../../src/transport/registry/client.js'
import { MediaType } from '../../src/spec/media-types.js'
import { digestOf } from '../../src/digest/index.js'
import { requireTool } from '../helpers/tools.js'
import { registryMissing, startRegistry, type RunningRegistry } from '../helpers/registry.js'
import { tempDir } from '../fixtures/temp.js'

const skip = registryMissing()

describe('inspect over transports agrees with skopeo inspect', { skip }, () => {
  const tmp = tempDir({ after }, { prefix: 'lading-inspect-' })
  const layout = path.join(tmp, 'oci')
  let reg: RunningRegistry
  before(async () => {
    reg = await startRegistry()
    const src = path.join(tmp, 'src')
    mkdirSync(path.join(src, 'etc'), { recursive: true })
    writeFileSync(path.join(src, 'etc/motd'), 'hello\n')
    ladingOk(['init', '--layout', layout])
    ladingOk(['new', '--image', `${layout}:v1`])
    ladingOk(['insert', '--image', `${layout}:v1`, path.join(src, 'etc'), '/etc'])
    ladingOk(['config', '--image', `${layout}:v1`, '--config.env', 'A=1', '--config.label', 'l=v', '--config.cmd', '/bin/sh'])
  })
  after(async () => {
    await reg?.stop()
  })

  test('docker:// — summary, --raw and --config match skopeo', (t) => {
    if (!requireTool(t, 'skopeo')) return
    const ref = `docker://${reg.host}/lading/inspect:v1`
    ladingOk(['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, ref])
    const ours = JSON.parse(ladingOk(['inspect', '--tls-verify=false', ref]).stdout)
    const theirs = JSON.parse(runOk('skopeo', ['inspect', '--tls-verify=false', ref]).stdout)
    assert.equal(ours.Digest, theirs.Digest)
    assert.deepEqual(ours.Layers, theirs.Layers)
    assert.deepEqual(ours.Env, theirs.Env)
    assert.deepEqual(ours.Labels, theirs.Labels)
    assert.equal(ours.Architecture, theirs.Architecture)
    assert.deepEqual(
      ladingOk(['inspect', '--tls-verify=false', '--raw', ref]).stdoutBytes,
      runOk('skopeo', ['inspect', '--tls-verify=false', '--raw', ref]).stdoutBytes,
    )
    assert.deepEqual(
      ladingOk(['inspect', '--tls-verify=false', '--config', ref]).stdoutBytes,
      runOk('skopeo', ['inspect', '--tls-verify=false', '--config', '--raw', ref]).stdoutBytes,
    )
  })

  test("inspect-skopeo-shape: docker:// has skopeo inspect's keys, in its order, with its values (Name without transport, RepoTags)", (t) => {
    if (!requireTool(t, 'skopeo')) return
    const repo = `${reg.host}/lading/shape`
    ladingOk(['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${repo}:v1`])
    ladingOk(['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${repo}:v2`])
    const ours = JSON.parse(ladingOk(['inspect', '--tls-verify=false', `docker://${repo}:v1`]).stdout) as Record<string, unknown>
    const theirs = JSON.parse(runOk('skopeo', ['inspect', '--tls-verify=false', `docker://${repo}:v1`]).stdout) as Record<string, unknown>
    const keys = Object.keys(theirs)
    assert.deepEqual(
      Object.keys(ours).filter((k) => keys.includes(k)),
      keys,
      'every key of skopeo, in its order',
    )
    // LayersData sits between Layers and Env in skopeo versions that print it (not Debian's 1.9).
    assert.deepEqual(
      Object.keys(ours)
        .filter((k) => k !== 'LayersData' || keys.includes(k))
        .slice(0, keys.length),
      keys,
      "skopeo's keys first",
    )
    assert.equal(ours.Name, `${repo}`)
    assert.deepEqual([...(ours.RepoTags as string[])].sort(), ['v1', 'v2'])
    for (const k of keys) {
      if (k === 'Created') assert.equal(Date.parse(ours.Created as string), Date.parse(theirs.Created as string))
      else if (k === 'RepoTags') assert.deepEqual([...(ours.RepoTags as string[])].sort(), [...(theirs.RepoTags as string[])].sort())
      else assert.deepEqual(ours[k], theirs[k], k)
    }
    // --no-tags, as skopeo's: no listing, RepoTags empty.
    assert.deepEqual(JSON.parse(ladingOk(['inspect', '--tls-verify=false', '--no-tags', `docker://${repo}:v1`]).stdout).RepoTags, [])
  })

  test("inspect-skopeo-shape-index: through an index, Digest is the index's as in skopeo; Index.ImageDigest the picked image", async (t) => {
    if (!requireTool(t, 'skopeo')) return
    const repo = `${reg.host}/lading/shape-index`
    ladingOk(['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${repo}:v1`])
    const m = ladingOk(['inspect', '--tls-verify=false', '--raw', `docker://${repo}:v1`]).stdoutBytes
    const plain = JSON.parse(ladingOk(['inspect', '--tls-verify=false', `docker://${repo}:v1`]).stdout)
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [{ mediaType: MediaType.OciManifest, digest: plain.Digest, size: m.length, platform: { os: plain.Os, architecture: plain.Architecture } }],
      }),
    )
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false })
    try {
      await c.putManifest('lading/shape-index', 'multi', { bytes: index, mediaType: MediaType.OciIndex, digest: digestOf(index) })
    } finally {
      await c.close()
    }
    const ref = `docker://${repo}:multi`
    const ours = JSON.parse(ladingOk(['inspect', '--tls-verify=false', ref]).stdout)
    const theirs = JSON.parse(runOk('skopeo', ['inspect', '--tls-verify=false', ref]).stdout)
    assert.equal(ours.Digest, digestOf(index))
    assert.equal(ours.Digest, theirs.Digest)
    assert.deepEqual(ours.Index, { Digest: digestOf(index), Platforms: [`${plain.Os}/${plain.Architecture}`], ImageDigest: plain.Digest })
    assert.deepEqual([...ours.RepoTags].sort(), [...theirs.RepoTags].sort())
  })

  test('inspect-skopeo-shape-oci: other transports have the same shape, RepoTags [] as skopeo', (t) => {
    if (!requireTool(t, 'skopeo')) return
    const ours = JSON.parse(ladingOk(['inspect', `oci:${layout}:v1`]).stdout) as Record<string, unknown>
    const theirs = JSON.parse(runOk('skopeo', ['inspect', `oci:${layout}:v1`]).stdout) as Record<string, unknown>
    const keys = Object.keys(theirs)
    assert.deepEqual(
      Object.keys(ours).filter((k) => keys.includes(k)),
      keys,
    )
    assert.deepEqual(ours.RepoTags, [])
    assert.deepEqual(theirs.RepoTags, [])
    assert.equal(ours.Digest, theirs.Digest)
    assert.deepEqual(JSON.parse(ladingOk(['inspect', '--image', `${layout}:v1`]).stdout).RepoTags, [])
  })

  test('docker-archive: written by Lading, inspected by both', (t) => {
    if (!requireTool(t, 'skopeo')) return
    const archive = path.join(tmp, 'img.tar')
    ladingOk(['copy', '--quiet', `oci:${layout}:v1`, `docker-archive:${archive}:example/img:v1`])
    const ours = JSON.parse(ladingOk(['inspect', `docker-archive:${archive}`]).stdout)
    const theirs = JSON.parse(runOk('skopeo', ['inspect', `docker-archive:${archive}`]).stdout)
    // A docker-archive stores no manifest: each tool synthesises one. skopeo 1.9 labels the
    // archive's uncompressed layers `tar.gzip`; Lading labels them `tar`, as they are. So the
    // synthesised manifest digests differ; the config and the layer blobs must not.
    assert.deepEqual(ours.Layers, theirs.Layers)
    assert.deepEqual(ours.Env, theirs.Env)
    assert.deepEqual(
      ladingOk(['inspect', '--config', `docker-archive:${archive}`]).stdoutBytes,
      runOk('skopeo', ['inspect', '--config', '--raw', `docker-archive:${archive}`]).stdoutBytes,
    )
    assert.equal(ours.LayersData.length, 2, 'the empty base layer of new, and the inserted one')
    for (const l of ours.LayersData as Array<{ MIMEType: string }>) assert.equal(l.MIMEType, 'application/vnd.docker.image.rootfs.diff.tar')
  })

  test('a missing tag in a registry is one clear error line', () => {
    const r = lading(['inspect', '--tls-verify=false', `docker://${reg.host}/lading/inspect:nope`])
    assert.equal(r.status, 1)
    assert.match(r.stderr, /^lading: .*(manifest unknown|not found|MANIFEST_UNKNOWN)/i)
    assert.equal(r.stderr.trim().split('\n').length, 1)
  })
})
