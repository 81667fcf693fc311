/**
 * The overlayfs whiteout strategy of applyLayer: each layer unpacked alone records its whiteouts
 * as overlayfs does (char 0/0, `<prefix>.overlay.opaque=y`), and the layers stacked by a real
 * overlay mount show what applying them in one root shows.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { getAttributeSync } from '@napi-rs/xattr'
import { isLadingError } from '../../src/errors.js'
import type { WhiteoutStrategy } from '../../src/layer/apply.js'
import { applySpecs, isRoot, need } from './helpers/apply-env.js'
import { tempDir } from '../fixtures/temp.js'

const OVERLAY: WhiteoutStrategy = { kind: 'overlayfs', opaqueXattr: 'trusted.overlay.opaque' }
const isWhiteoutDevice = (p: string): boolean => {
  const st = lstatSync(p)
  return st.isCharacterDevice() && st.rdev === 0
}

describe('applyLayer: overlayfs whiteout strategy', () => {
  it('writes a 0/0 character device for .wh.NAME and the opaque xattr for .wh..wh..opq', async (t) => {
    if (!need(t, isRoot(), 'needs root (trusted.* xattrs)')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const st = await applySpecs(
      dir,
      [
        { name: 'etc/' },
        { name: 'etc/.wh.motd', data: '' },
        { name: 'var/cache/.wh..wh..opq', data: '' },
        { name: 'var/cache/keep', data: 'new' },
        { name: '.wh.gone', data: '' },
      ],
      { whiteouts: OVERLAY },
    )
    assert.equal(st.whiteouts, 3)
    assert.ok(isWhiteoutDevice(path.join(dir, 'etc/motd')), 'char 0/0 marks the deleted path')
    assert.ok(isWhiteoutDevice(path.join(dir, 'gone')))
    assert.equal(getAttributeSync(path.join(dir, 'var/cache'), 'trusted.overlay.opaque')?.toString(), 'y')
    assert.equal(readFileSync(path.join(dir, 'var/cache/keep'), 'utf8'), 'new')
    assert.ok(!existsSync(path.join(dir, 'etc/.wh.motd')), 'the marker file itself is not written')
  })

  it("the layer's own entry wins over its whiteout, in either order", async (t) => {
    if (!need(t, isRoot(), 'needs root')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(
      dir,
      [
        { name: 'a', data: 'before' },
        { name: '.wh.a', data: '' },
        { name: '.wh.b', data: '' },
        { name: 'b', data: 'after' },
      ],
      { whiteouts: OVERLAY },
    )
    assert.equal(readFileSync(path.join(dir, 'a'), 'utf8'), 'before')
    assert.equal(readFileSync(path.join(dir, 'b'), 'utf8'), 'after')
  })

  it('whiteouts under a path this layer made a file are no-ops (umoci writes these)', async (t) => {
    if (!need(t, isRoot(), 'needs root')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    await applySpecs(
      dir,
      [
        { name: 'usr/share/licenses', data: 'now a file' },
        { name: 'usr/share/licenses/.wh.GPL', data: '' },
        { name: 'usr/share/licenses/.wh..wh..opq', data: '' },
      ],
      { whiteouts: OVERLAY },
    )
    assert.equal(readFileSync(path.join(dir, 'usr/share/licenses'), 'utf8'), 'now a file')
  })

  it('overlay whiteout: a hostile whiteout name is refused (UNSAFE_PATH)', async (t) => {
    if (!need(t, isRoot(), 'needs root')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    for (const name of ['x/.wh..', 'x/.wh.']) {
      await assert.rejects(applySpecs(dir, [{ name, data: '' }], { whiteouts: OVERLAY }), (e) => isLadingError(e, 'UNSAFE_PATH'))
    }
    await assert.rejects(applySpecs(dir, [{ name: '../.wh.etc', data: '' }], { whiteouts: OVERLAY }), (e) => isLadingError(e, 'UNSAFE_PATH'))
  })

  it('layers unpacked alone and stacked by overlayfs equal the layers applied in one root', async (t) => {
    if (!need(t, isRoot(), 'needs root (overlay mount)')) return
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const merged = path.join(dir, 'merged')
    const layers: Parameters<typeof applySpecs>[1][] = [
      [
        { name: 'etc/' },
        { name: 'etc/motd', data: 'hi' },
        { name: 'etc/issue', data: 'debian' },
        { name: 'var/cache/a', data: '1' },
        { name: 'var/cache/b', data: '2' },
      ],
      [
        { name: 'etc/.wh.motd', data: '' },
        { name: 'var/cache/.wh..wh..opq', data: '' },
        { name: 'var/cache/c', data: '3' },
      ],
    ]
    const lower: string[] = []
    for (const [i, specs] of layers.entries()) {
      const d = path.join(dir, `l${i}`)
      mkdirSync(d)
      await applySpecs(d, specs, { whiteouts: OVERLAY })
      lower.unshift(d)
    }
    const flat = path.join(dir, 'flat')
    mkdirSync(flat)
    for (const specs of layers) await applySpecs(flat, specs)
    mkdirSync(merged)
    const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower.join(':')}`, merged], { encoding: 'utf8' })
    if (!need(t, m.status === 0, `overlay mount failed: ${m.stderr}`)) return
    try {
      const list = (root: string): string[] =>
        ['etc', 'var/cache'].flatMap((d) =>
          readdirSync(path.join(root, d))
            .sort()
            .map((n) => `${d}/${n}`),
        )
      assert.deepEqual(list(merged), list(flat))
      assert.deepEqual(list(merged), ['etc/issue', 'var/cache/c'])
    } finally {
      spawnSync('umount', [merged])
    }
  })
})
