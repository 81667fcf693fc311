import { test } from 'node:test'
import assert from 'node:assert/strict'
import { editConfig, newImageConfig, normalizePort } from '../../src/spec/config-edit.js'
import { statImage, summarizeImage } from '../../src/spec/image-stat.js'
import { isLadingError } from '../../src/errors.js'
import type { Descriptor, ImageConfig, Manifest } from '../../src/spec/types.js'

const base = (): ImageConfig => ({
  ...newImageConfig({ os: 'linux', architecture: 'amd64' }, '2024-01-01T00:00:00Z'),
  config: { Env: ['PATH=/bin', 'A=1'], Labels: { a: '1' }, Cmd: ['sh'] },
})

test('editConfig replaces env entries by name and appends new ones', () => {
  const c = editConfig(base(), { env: ['A=2', 'B=3'] })
  assert.deepEqual(c.config!.Env, ['PATH=/bin', 'A=2', 'B=3'])
})

test('editConfig does not modify its input', () => {
  const b = base()
  editConfig(b, { env: ['A=2'], labels: ['b=2'], clear: ['config.cmd'] })
  assert.deepEqual(b, base())
})

test('editConfig: entrypoint and cmd replace, labels/volumes/ports merge, clear runs first', () => {
  const c = editConfig(base(), {
    entrypoint: ['/bin/echo', 'x'],
    cmd: ['y'],
    labels: ['b=2', 'a=3'],
    volumes: ['/data'],
    exposedPorts: ['80', '53/udp'],
    clear: ['config.labels'],
    user: '1:2',
    workingDir: '/w',
    stopSignal: 'SIGINT',
  })
  assert.deepEqual(c.config!.Entrypoint, ['/bin/echo', 'x'])
  assert.deepEqual(c.config!.Cmd, ['y'])
  assert.deepEqual(c.config!.Labels, { b: '2', a: '3' })
  assert.deepEqual(c.config!.Volumes, { '/data': {} })
  assert.deepEqual(c.config!.ExposedPorts, { '80/tcp': {}, '53/udp': {} })
  assert.equal(c.config!.User, '1:2')
  assert.equal(c.config!.WorkingDir, '/w')
  assert.equal(c.config!.StopSignal, 'SIGINT')
})

test('editConfig records the history entry and validates dates', () => {
  const c = editConfig(base(), { history: { created: '2024-02-02T00:00:00Z', created_by: 'lading config', empty_layer: true } })
  assert.equal(c.history!.length, 1)
  assert.equal(c.history![0]!.empty_layer, true)
  assert.throws(
    () => editConfig(base(), { created: 'yesterday' }),
    (e) => isLadingError(e, 'USAGE') && /RFC 3339/.test((e as Error).message),
  )
})

test('editConfig refuses unknown --clear keys, bad ports, relative volumes, bad labels', () => {
  assert.throws(
    () => editConfig(base(), { clear: ['bogus'] }),
    (e) => isLadingError(e, 'USAGE') && /unknown key "bogus"/.test((e as Error).message),
  )
  assert.throws(
    () => normalizePort('http'),
    (e) => isLadingError(e, 'USAGE'),
  )
  assert.throws(
    () => normalizePort('70000'),
    (e) => isLadingError(e, 'USAGE'),
  )
  assert.throws(
    () => editConfig(base(), { volumes: ['data'] }),
    (e) => isLadingError(e, 'USAGE'),
  )
  assert.throws(
    () => editConfig(base(), { labels: ['=x'] }),
    (e) => isLadingError(e, 'USAGE'),
  )
})

test('statImage pairs non-empty history entries with layers in order, like umoci stat', () => {
  const d = (n: number) => `sha256:${String(n).repeat(64)}` as Descriptor['digest']
  const layers: Descriptor[] = [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d(1), size: 10 },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d(2), size: 20 },
  ]
  const manifest: Manifest = { schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d(9), size: 5 }, layers }
  const config: ImageConfig = {
    ...base(),
    rootfs: { type: 'layers', diff_ids: [d(3), d(4)] },
    history: [{ created_by: 'a' }, { created_by: 'b', empty_layer: true }, { created_by: 'c', comment: 'x' }],
  }
  const mdesc: Descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d(8), size: 100 }
  const st = statImage(mdesc, manifest, config)
  assert.deepEqual(
    st.history.map((h) => [h.layer?.digest ?? null, h.diff_id, h.created_by]),
    [
      [d(1), d(3), 'a'],
      [null, '', 'b'],
      [d(2), d(4), 'c'],
    ],
  )
  assert.equal(st.imageId, d(9))
  assert.equal(st.manifest.digest, d(8))
  assert.equal(st.platform, 'linux/amd64')
  const sum = summarizeImage(mdesc, manifest, config, 'x')
  assert.deepEqual(sum.Layers, [d(1), d(2)])
  assert.deepEqual(sum.DiffIds, [d(3), d(4)])
})
