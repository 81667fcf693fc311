/**
 * applyLayer on the real Debian fixture (scripts/fixtures.sh): the minbase layer gives the same
 * tree as GNU `tar -xzf`, every change of the layered image shows, and a rootless unpack as an
 * unprivileged user gives the same tree but for ownership and devices.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, copyFileSync, createReadStream, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { createGunzip } from 'node:zlib'
import { applyLayer } from '../../src/layer/apply.js'
import { debianFixtures } from '../fixtures/debian.js'
import { hasCommand, isRoot, need } from './helpers/apply-env.js'
import { diffTrees, treeOf, type TreeOptions } from '../fixtures/tree.js'
import { tempDir, type AfterHook } from '../fixtures/temp.js'
import { applyModuleForTestUser, ensureTestUser, testUserIds } from './helpers/rootless.js'

/** Everything an extraction must reproduce, directory mtimes and hard-link counts included. */
const WHOLE: TreeOptions = { mtimes: 'all', nlink: true }

/** Scratch space: tmpfs when there is one (the disk of these machines is slow and noisy). */
function scratch(t: AfterHook): string {
  return tempDir(t, { prefix: 'lading-debian-', base: existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir() })
}

/** The layer blob paths of a tag in an OCI layout (test-side reading; the store is not under test). */
function layerBlobs(layout: string, tag: string): string[] {
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>
  }
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)
  assert.ok(desc, `tag ${tag} missing from the fixture layout`)
  const blob = (d: string): string => path.join(layout, 'blobs', ...d.split(':'))
  const manifest = JSON.parse(readFileSync(blob(desc.digest), 'utf8')) as { layers: Array<{ digest: string; mediaType: string }> }
  return manifest.layers.map((l) => {
    assert.match(l.mediaType, /tar\+gzip$/)
    return blob(l.digest)
  })
}

async function applyBlobs(root: string, blobs: string[], opts: Parameters<typeof applyLayer>[2] = {}): Promise<void> {
  for (const b of blobs) await applyLayer(root, createReadStream(b, { highWaterMark: 1 << 20 }).pipe(createGunzip({ chunkSize: 256 * 1024 })), opts)
}

/** Directory mtimes as GNU tar lists them from the archive headers (seconds, UTC). */
function listedDirMtimes(blob: string): Map<string, number> {
  const r = spawnSync('tar', ['--full-time', '--numeric-owner', '-tvzf', blob], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' }, maxBuffer: 64 << 20 })
  assert.equal(r.status, 0, r.stderr)
  const out = new Map<string, number>()
  for (const line of r.stdout.split('\n')) {
    const m = /^d\S+\s+\S+\s+\d+\s+(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\s(.*)$/.exec(line)
    if (!m) continue
    let name = m[3]!.replace(/\/$/, '').replace(/^\.\//, '')
    if (name === '' || name === '.') name = '.'
    out.set(name, Date.parse(`${m[1]}T${m[2]}Z`) / 1000)
  }
  return out
}

describe('applyLayer on the Debian fixture', () => {
  it('the minbase layer applies to the same tree as tar -xzf (type, mode, owner, size, content, link, xattrs, mtime)', { timeout: 180_000 }, async (t) => {
    const fx = debianFixtures(t)
    if (!fx) return
    if (!need(t, isRoot(), 'needs root (ownership, devices)') || !need(t, hasCommand('tar'), 'GNU tar not installed')) return
    const [blob] = layerBlobs(fx.layout, 'minbase')
    const dir = scratch(t)
    const ours = path.join(dir, 'lading')
    const theirs = path.join(dir, 'tar')
    mkdirSync(ours)
    mkdirSync(theirs)
    const warnings: string[] = []
    await applyBlobs(ours, [blob!], { onWarning: (w) => warnings.push(w) })
    const r = spawnSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-xzpf', blob!, '-C', theirs], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    // GNU tar restores a directory's mtime when it leaves the directory in archive order; umoci
    // writes entries sorted by full path ("pam/" < "pam-configs/" < "pam/x"), so GNU tar re-enters
    // some directories and leaves them with the time of extraction. Those are compared against
    // the archive's headers (as GNU tar itself lists them) instead.
    const listed = listedDirMtimes(blob!)
    const diffs = diffTrees(treeOf(ours, WHOLE), treeOf(theirs, WHOLE), {
      ignore: (rel, key, a) => key === 'mtime' && a.type === 'dir' && listed.get(rel) === a.mtime,
    })
    assert.deepEqual(diffs, [])
    const tree = treeOf(ours, WHOLE)
    assert.ok(tree.size > 5000, `only ${tree.size} paths`)
    for (const [rel, node] of tree) if (node.type === 'dir') assert.equal(node.mtime, listed.get(rel), `dir ${rel} mtime`)
    assert.deepEqual(warnings, [])
  })

  it(
    'the layered image: every change of layered-changes.txt shows, and a rootless unpack as ladingtest matches but for owners and devices',
    { timeout: 240_000 },
    async (t) => {
      const fx = debianFixtures(t)
      if (!fx) return
      if (!need(t, isRoot(), 'needs root (ownership, devices, switching user)')) return
      const blobs = layerBlobs(fx.layout, 'layered')
      assert.equal(blobs.length, 3)
      const dir = scratch(t)
      const root = path.join(dir, 'root')
      mkdirSync(root)
      await applyBlobs(root, blobs)
      // The last change of each path is what the final tree shows.
      const final = new Map<string, [string, string]>()
      for (const line of readFileSync(fx.layeredChanges, 'utf8').split('\n')) {
        const [layer, kind, p] = line.split(' ')
        if (layer && kind && p) final.set(p, [layer, kind])
      }
      for (const [p, [layer, kind]] of final) {
        const abs = path.join(root, p)
        const st = existsSync(abs) || kind.startsWith('symlink') ? lstatSync(abs, { throwIfNoEntry: false }) : undefined
        const what = `${kind} ${p}`
        switch (kind) {
          case 'deleted-dir':
          case 'deleted-file':
            assert.equal(st, undefined, what)
            break
          case 'dir-to-file':
            assert.ok(st?.isFile(), what)
            break
          case 'file-to-dir':
          case 'added-dir':
            assert.ok(st?.isDirectory(), what)
            break
          case 'hardlink':
          case 'hardlink-lower':
            // umoci writes layer 3's link to a lower file whose partner is not in that layer as a
            // plain file (see fixtures.sh), so only layer 2's links can be checked for sharing.
            assert.ok(st?.isFile() && (layer === 'layer3' || st.nlink >= 2), what)
            break
          case 'symlink':
          case 'symlink-absolute':
          case 'symlink-dangling':
          case 'symlink-dir':
            assert.ok(st?.isSymbolicLink(), what)
            break
          case 'setuid':
            assert.ok(st && (st.mode & 0o4000) !== 0, what)
            break
          case 'setgid':
            assert.ok(st && (st.mode & 0o2000) !== 0, what)
            break
          case 'setuid-setgid':
            assert.ok(st && (st.mode & 0o6000) === 0o6000, what)
            break
          case 'sticky-dir':
            assert.ok(st?.isDirectory() && (st.mode & 0o1000) !== 0, what)
            break
          case 'xattr-user':
            assert.ok((treeOf(abs).get('.')!.xattrs ?? '').includes('user.'), what)
            break
          case 'xattr-capability':
            assert.ok((treeOf(abs).get('.')!.xattrs ?? '').includes('security.capability='), what)
            break
          case 'mode-000-file':
            assert.ok(st?.isFile() && (st.mode & 0o7777) === 0, what)
            break
          case 'mode-000-dir':
            assert.ok(st?.isDirectory() && (st.mode & 0o7777) === 0 && readdirSync(abs).length > 0, what)
            break
          case 'fifo':
            assert.ok(st?.isFIFO(), what)
            break
          case 'owner-1000':
            assert.equal(st?.uid, 1000, what)
            break
          case 'owner-70000':
            assert.equal(st?.uid, 70000, what)
            break
          case 'modified':
          case 'metadata':
            assert.ok(st?.isFile(), what)
            break
          default:
            assert.fail(`unknown change kind ${kind}`)
        }
      }

      // Rootless, as an unprivileged user, into a directory that user owns.
      if (!need(t, ensureTestUser() && hasCommand('runuser', ['--help']), 'user ladingtest and runuser needed')) return
      chmodSync(dir, 0o755)
      const rl = path.join(dir, 'rootless')
      mkdirSync(rl)
      const ids = testUserIds()
      chownSync(rl, ids.uid, ids.gid)
      const mod = applyModuleForTestUser(t)
      // The layout's blobs are mode 0600: hand the unprivileged user readable copies.
      const copies = blobs.map((b, i) => {
        const c = path.join(dir, `layer${i}.tgz`)
        copyFileSync(b, c)
        chmodSync(c, 0o644)
        return c
      })
      const script = path.join(dir, 'rootless.mjs')
      const applyJs = mod.applyJs
      writeFileSync(
        script,
        `
      import { createReadStream } from 'node:fs'
      import { createGunzip } from 'node:zlib'
      import { applyLayer } from ${JSON.stringify(applyJs)}
      const warnings = []
      for (const b of ${JSON.stringify(copies)}) {
        await applyLayer(${JSON.stringify(rl)}, createReadStream(b).pipe(createGunzip()), { rootless: true, onWarning: (w) => warnings.push(w) })
      }
      console.log(JSON.stringify({ uid: process.getuid(), warnings }))
      `,
      )
      const r = spawnSync('runuser', ['-u', 'ladingtest', '--', process.execPath, script], { encoding: 'utf8', maxBuffer: 16 << 20 })
      assert.equal(r.status, 0, r.stderr)
      const out = JSON.parse(r.stdout) as { uid: number; warnings: string[] }
      assert.notEqual(out.uid, 0)
      const devices = [...treeOf(root, WHOLE)].filter(([, n]) => n.type === 'char' || n.type === 'block').map(([rel]) => rel)
      assert.ok(devices.length > 0)
      for (const d of devices)
        assert.ok(
          out.warnings.some((w) => w.includes(`"${d}"`)),
          `no warning for skipped device ${d}`,
        )
      const diffs = diffTrees(treeOf(root, WHOLE), treeOf(rl, WHOLE), {
        ignore: (rel, key, a) =>
          key === 'uid' ||
          key === 'gid' ||
          // security.capability and trusted.* need privileges; user.* xattrs must still match.
          (key === 'xattrs' && (a.xattrs ?? '').includes('security.capability')) ||
          (rel === '.' && key === 'mode'),
      }).filter((d) => !devices.some((dev) => d.startsWith(`${dev}: only in first`)))
      assert.deepEqual(diffs, [])
      const m0 = treeOf(path.join(rl, 'opt/lading/mode000-dir'), WHOLE)
      assert.equal(m0.get('.')!.mode, 0)
      assert.ok(m0.size > 1, 'mode-000 directory keeps its contents')
      assert.equal(lstatSync(path.join(rl, 'opt/lading/mode000-file')).mode & 0o7777, 0)
    },
  )
})
