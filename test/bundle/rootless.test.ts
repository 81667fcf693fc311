/** Rootless unpack and repack as an unprivileged user, with mode-000 files and directories. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { Layout } from '../../src/store/layout.js'
import { resolveImage } from '../../src/store/resolve.js'
import { requireTool } from '../helpers/tools.js'
import { cliPath, ladingOk, run, runOk } from '../helpers/cli.js'
import { type Entry, initImage, layerTar } from '../fixtures/image.js'
import { tarEntries } from '../fixtures/tar.js'
import { tempDir } from '../fixtures/temp.js'

const USER = 'ladingtest'

const LOCKED: Entry[] = [
  { name: 'locked/', type: 'directory', mode: 0o000 },
  { name: 'locked/inside', body: 'secret\n', mode: 0o000 },
  { name: 'locked/sub/', type: 'directory', mode: 0o000 },
  { name: 'locked/sub/deeper', body: 'deeper\n', mode: 0o600 },
  { name: 'file000', body: 'zero\n', mode: 0o000 },
  { name: 'owned', body: 'by 1234\n', uid: 1234, gid: 1234 },
  { name: 'dev/', type: 'directory' },
]

/** uid and gid of the test user, creating it as root if needed; undefined after skipping. */
function testUser(t: import('node:test').TestContext): { uid: number; gid: number } | undefined {
  if (!requireTool(t, 'runuser')) return undefined
  if (run('id', ['-u', USER]).status !== 0) {
    if (process.getuid?.() !== 0) {
      if (process.env.CI === 'true') throw new Error(`user ${USER} missing, and CI=true forbids skipping`)
      t.skip(`user ${USER} missing (useradd ${USER})`)
      return undefined
    }
    runOk('useradd', ['--create-home', '--shell', '/bin/sh', USER])
  }
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') throw new Error('running as another user needs root, and CI=true forbids skipping')
    t.skip('needs root to run as another user')
    return undefined
  }
  return { uid: Number(runOk('id', ['-u', USER]).stdout.trim()), gid: Number(runOk('id', ['-g', USER]).stdout.trim()) }
}

function asUser(args: string[]) {
  return run('runuser', ['-u', USER, '--', process.execPath, cliPath, ...args])
}

test('rootless unpack then repack as an unprivileged user: mode-000 entries survive, unchanged ones stay out of the layer', { timeout: 60_000 }, async (t) => {
  const who = testUser(t)
  if (!who) return
  const dir = tempDir(t)
  await fsp.chmod(dir, 0o755)
  const img = await initImage(path.join(dir, 'img'), { layers: [LOCKED], config: { Cmd: ['/bin/sh'] } })
  runOk('chown', ['-R', `${who.uid}:${who.gid}`, img.dir])
  const work = path.join(dir, 'work')
  await fsp.mkdir(work)
  await fsp.chown(work, who.uid, who.gid)
  const bundle = path.join(work, 'bundle')

  const u = asUser(['unpack', '--rootless', '--image', `${img.dir}:latest`, bundle])
  assert.equal(u.status, 0, u.stderr)
  const root = path.join(bundle, 'rootfs')
  assert.equal((await fsp.lstat(path.join(root, 'locked'))).mode & 0o7777, 0)
  assert.equal((await fsp.lstat(path.join(root, 'locked/inside'))).mode & 0o7777, 0)
  assert.equal(await fsp.readFile(path.join(root, 'locked/sub/deeper'), 'utf8'), 'deeper\n')
  assert.equal((await fsp.lstat(path.join(root, 'owned'))).uid, who.uid)

  // A change next to (not inside) the locked directory, made by the user.
  const w = run('runuser', ['-u', USER, '--', 'sh', '-c', `echo new > ${path.join(root, 'added')}`])
  assert.equal(w.status, 0, w.stderr)
  const r = asUser(['repack', '--image', `${img.dir}:latest`, bundle])
  assert.equal(r.status, 0, r.stderr)
  // The locked directory's mode was put back after the walk.
  assert.equal((await fsp.lstat(path.join(root, 'locked'))).mode & 0o7777, 0)
  assert.equal((await fsp.lstat(path.join(root, 'locked/sub'))).mode & 0o7777, 0)

  const layout = await Layout.open(img.dir)
  const image = await resolveImage(layout, { tag: 'latest' }, 'any')
  assert.equal(image.manifest.layers.length, 2)
  const added = await tarEntries(await layerTar(layout, image.manifest.layers[1]!))
  assert.deepEqual(
    added.map((e) => e.name),
    ['added'],
  )
  // The user's files are the container's root's in the layer (host ids mapped back).
  assert.deepEqual([added[0]!.uid, added[0]!.gid], [0, 0])

  // Repacking again (still based on the unpacked image) with --refresh-bundle, then once more:
  // nothing left to add (the opened modes were not mistaken for changes, nor recorded).
  const again = asUser(['repack', '--image', `${img.dir}:latest`, bundle, '--refresh-bundle'])
  assert.equal(again.status, 0, again.stderr)
  assert.equal((await resolveImage(layout, { tag: 'latest' }, 'any')).manifest.layers.length, 2)
  const none = asUser(['repack', '--image', `${img.dir}:latest`, bundle])
  assert.match(none.stdout, /no changes/)

  // Root unpacks the result with the locked entries intact.
  const check = path.join(dir, 'check')
  ladingOk(['unpack', '--image', `${img.dir}:latest`, check])
  assert.equal((await fsp.lstat(path.join(check, 'rootfs/locked'))).mode & 0o7777, 0)
  assert.equal((await fsp.lstat(path.join(check, 'rootfs/owned'))).uid, 1234)
  assert.equal(await fsp.readFile(path.join(check, 'rootfs/added'), 'utf8'), 'new\n')
})

test('rootless unpack with --uid-map/--gid-map records the mappings in config.json and lading.json', { timeout: 60_000 }, async (t) => {
  const who = testUser(t)
  if (!who) return
  const dir = tempDir(t)
  await fsp.chmod(dir, 0o755)
  const img = await initImage(path.join(dir, 'img'), { layers: [[{ name: 'f', body: 'x' }]], config: { Cmd: ['/bin/sh'] } })
  runOk('chown', ['-R', `${who.uid}:${who.gid}`, img.dir])
  const work = path.join(dir, 'work')
  await fsp.mkdir(work)
  await fsp.chown(work, who.uid, who.gid)
  const bundle = path.join(work, 'bundle')
  const u = asUser(['unpack', '--rootless', '--uid-map', `0:${who.uid}:1`, '--gid-map', `0:${who.gid}:1`, '--image', img.dir, bundle])
  assert.equal(u.status, 0, u.stderr)
  const cfg = JSON.parse(await fsp.readFile(path.join(bundle, 'config.json'), 'utf8'))
  assert.deepEqual(cfg.linux.uidMappings, [{ containerID: 0, hostID: who.uid, size: 1 }])
  assert.deepEqual(cfg.linux.gidMappings, [{ containerID: 0, hostID: who.gid, size: 1 }])
  const state = JSON.parse(await fsp.readFile(path.join(bundle, 'lading.json'), 'utf8'))
  assert.equal(state.rootless, true)
  assert.deepEqual(state.uidMap, [{ containerId: 0, hostId: who.uid, size: 1 }])
  assert.equal((await fsp.lstat(path.join(bundle, 'rootfs/f'))).uid, who.uid)
})
