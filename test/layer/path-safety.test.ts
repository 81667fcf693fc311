/**
 * The path-safety suite: for each hostile layer, a sentinel directory beside the root must be
 * unchanged afterwards, nothing new may appear beside the root, and a refusal must be an
 * UNSAFE_PATH (or INVALID_TAR) error naming the refused entry.
 */
import assert from 'node:assert/strict'
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { isLadingError } from '../../src/errors.js'
import { MAX_SYMLINK_HOPS, RootResolver, entryComponents, resolveInRoot } from '../../src/layer/path-safety.js'
import { applySpecs, isRoot } from './helpers/apply-env.js'
import { tempDir, type AfterHook } from '../fixtures/temp.js'
import type { TarSpec } from './helpers/tar-builder.js'

const opts = { rootless: !isRoot() }

function snapshot(dir: string): string {
  const out: string[] = []
  const walk = (p: string, rel: string): void => {
    const st = lstatSync(p)
    let extra = ''
    if (st.isFile()) extra = readFileSync(p, 'base64')
    else if (st.isSymbolicLink()) extra = readlinkSync(p)
    out.push(`${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${st.nlink} ${extra}`)
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(path.join(p, n), `${rel}/${n}`)
  }
  walk(dir, '.')
  return out.join('\n')
}

interface Hostile {
  /** Layers applied in order; the last one is expected to be refused (unless `lands` is set). */
  layers: (sentinel: string) => TarSpec[][]
  /** The entry the error must name. */
  refused?: string | ((sentinel: string) => string)
  /** For layers resolved inside the root instead of refused: the path (relative to root) that must now exist. */
  lands?: string | ((sentinel: string) => string)
  code?: 'UNSAFE_PATH' | 'INVALID_TAR'
}

async function runHostile(hook: AfterHook, h: Hostile): Promise<void> {
  const dir = tempDir(hook, { prefix: 'lading-hostile-' })
  const root = path.join(dir, 'root')
  const sentinel = path.join(dir, 'sentinel')
  mkdirSync(root)
  mkdirSync(path.join(sentinel, 'sub'), { recursive: true })
  writeFileSync(path.join(sentinel, 'canary'), 'do not touch', { mode: 0o644 })
  writeFileSync(path.join(sentinel, 'sub', 'inner'), 'inner')
  const before = snapshot(sentinel)
  const beside = readdirSync(dir).sort()
  const layers = h.layers(sentinel)
  let error: unknown
  try {
    for (const layer of layers) await applySpecs(root, layer, opts)
  } catch (e) {
    error = e
  }
  assert.equal(snapshot(sentinel), before, 'sentinel directory changed')
  assert.deepEqual(readdirSync(dir).sort(), beside, 'something appeared beside the root')
  if (h.refused !== undefined) {
    const refused = typeof h.refused === 'function' ? h.refused(sentinel) : h.refused
    assert.ok(error !== undefined, `expected entry ${refused} to be refused`)
    assert.ok(isLadingError(error, h.code ?? 'UNSAFE_PATH'), `expected ${h.code ?? 'UNSAFE_PATH'}, got ${String(error)}`)
    assert.ok((error as Error).message.includes(`"${refused}"`), `error does not name ${refused}: ${(error as Error).message}`)
  } else {
    assert.equal(error, undefined, `unexpected error: ${String(error)}`)
  }
  if (h.lands !== undefined) {
    const lands = typeof h.lands === 'function' ? h.lands(sentinel) : h.lands
    assert.ok(existsSync(path.join(root, lands)), `${lands} should exist inside the root`)
  }
}

describe('path safety: hostile layers leave the sentinel beside the root untouched', () => {
  it('dotdot-name: ../sentinel/pwned is refused', (t) =>
    runHostile(t, {
      layers: () => [[{ name: '../sentinel/pwned', data: 'x' }]],
      refused: '../sentinel/pwned',
    }))
  it('dotdot-inner: a/../../sentinel/canary is refused', (t) =>
    runHostile(t, {
      layers: () => [
        [
          { name: 'a/', mode: 0o755 },
          { name: 'a/../../sentinel/canary', data: 'x' },
        ],
      ],
      refused: 'a/../../sentinel/canary',
    }))
  it('absolute-name: an absolute host path lands inside the root, not at the host path', (t) =>
    runHostile(t, {
      layers: (s) => [[{ name: `${s}/canary`, data: 'x' }]],
      lands: (s) => `${s}/canary`,
    }))
  it('root-entry: an entry named "/" (umoci insert SOURCE /) applies to the root, its children land inside', (t) =>
    runHostile(t, {
      layers: () => [
        [
          { name: '/', mode: 0o755 },
          { name: '/x/', mode: 0o755 },
          { name: '/x/f', data: 'x' },
        ],
      ],
      lands: 'x/f',
    }))
  it('absolute-dotdot: /../sentinel/canary still climbs above the root and is refused', (t) =>
    runHostile(t, {
      layers: () => [[{ name: '/../sentinel/canary', data: 'x' }]],
      refused: '/../sentinel/canary',
    }))
  it('symlink-escape-same-layer: a file written through a symlink to ../sentinel is refused', (t) =>
    runHostile(t, {
      layers: () => [
        [
          { name: 'evil', type: '2', linkname: '../sentinel' },
          { name: 'evil/pwned', data: 'x' },
        ],
      ],
      refused: 'evil/pwned',
    }))
  it('symlink-escape-earlier-layer: the symlink comes from a lower layer', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'evil', type: '2', linkname: '../../../../sentinel' }], [{ name: 'evil/canary', data: 'x' }]],
      refused: 'evil/canary',
    }))
  it('symlink-escape-chain: a chain of relative symlinks that climbs out is refused', (t) =>
    runHostile(t, {
      layers: () => [
        [
          { name: 'a/', mode: 0o755 },
          { name: 'a/up', type: '2', linkname: '..' },
          { name: 'a/upup', type: '2', linkname: 'up/..' },
          { name: 'a/upup/sentinel/canary', data: 'x' },
        ],
      ],
      refused: 'a/upup/sentinel/canary',
    }))
  it("symlink-to-host-absolute: a symlink to the sentinel's absolute path resolves inside the root", (t) =>
    runHostile(t, {
      layers: (s) => [
        [
          { name: 'evil', type: '2', linkname: s },
          { name: 'evil/canary', data: 'x' },
        ],
      ],
      lands: (s) => `${s}/canary`, // the absolute target re-rooted under the root
    }))
  it('symlink-to-root: evil -> / then evil/etc/pwned lands inside the root', (t) =>
    runHostile(t, {
      layers: () => [
        [
          { name: 'evil', type: '2', linkname: '/' },
          { name: 'evil/etc/pwned', data: 'x' },
        ],
      ],
      lands: 'etc/pwned',
    }))
  it('symlink-to-root-dot: evil -> /. then evil/pwned lands inside the root', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'evil', type: '2', linkname: '/.' }], [{ name: 'evil/pwned', data: 'x' }]],
      lands: 'pwned',
    }))
  it('symlink-final-component: a file entry replaces a symlink to the sentinel, never writes through it', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'evil', type: '2', linkname: '../sentinel/canary' }], [{ name: 'evil', data: 'x', mode: 0o777 }]],
      lands: 'evil',
    }))
  it('symlink-final-dir-entry: a directory entry over a symlink to the sentinel does not chmod/chown it', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'evil', type: '2', linkname: '../sentinel' }], [{ name: 'evil/', mode: 0o777, uid: 4242 }]],
      lands: 'evil',
    }))
  it('symlink-xattr: xattrs on a symlink to the sentinel are set on the link, not its target', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'evil', type: '2', linkname: '../sentinel/canary', pax: { 'SCHILY.xattr.user.pwned': 'x' } }]],
      lands: 'evil',
    }))
  it('hardlink-outside: a hardlink to ../sentinel/canary is refused', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'h', type: '1', linkname: '../sentinel/canary' }]],
      refused: 'h',
    }))
  it('hardlink-through-symlink: a hardlink whose target is reached through a symlink out of the root is refused', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'evil', type: '2', linkname: '../sentinel' }], [{ name: 'h', type: '1', linkname: 'evil/canary' }]],
      refused: 'h',
    }))
  it('hardlink-through-absolute-symlink: the target is looked up inside the root (and is missing)', (t) =>
    runHostile(t, {
      layers: (s) => [
        [
          { name: 'evil', type: '2', linkname: s },
          { name: 'h', type: '1', linkname: 'evil/canary' },
        ],
      ],
      refused: 'h',
      code: 'INVALID_TAR',
    }))
  it('hardlink-to-symlink-then-write: writing to a hardlinked symlink name replaces it', (t) =>
    runHostile(t, {
      layers: () => [
        [
          { name: 's', type: '2', linkname: '../sentinel/canary' },
          { name: 'h', type: '1', linkname: 's' },
        ],
        [{ name: 'h', data: 'x' }],
      ],
      lands: 'h',
    }))
  it('whiteout-escape: ../.wh.sentinel is refused', (t) =>
    runHostile(t, {
      layers: () => [[{ name: '../.wh.sentinel' }]],
      refused: '../.wh.sentinel',
    }))
  it('whiteout-dotdot-name: a/.wh... (whiteout of "..") is refused', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'a/', mode: 0o755 }, { name: 'a/.wh...' }]],
      refused: 'a/.wh...',
    }))
  it('whiteout-through-symlink: evil/.wh.canary with evil -> ../sentinel is refused', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'evil', type: '2', linkname: '../sentinel' }], [{ name: 'evil/.wh.canary' }]],
      refused: 'evil/.wh.canary',
    }))
  it('whiteout-of-symlink: .wh.evil removes the symlink, not its target', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'evil', type: '2', linkname: '../sentinel' }], [{ name: '.wh.evil' }]],
    }))
  it('opaque-through-symlink: evil/.wh..wh..opq with evil -> ../sentinel does nothing', (t) =>
    runHostile(t, {
      layers: () => [[{ name: 'evil', type: '2', linkname: '../sentinel' }], [{ name: 'evil/.wh..wh..opq' }]],
      lands: 'evil',
    }))
  it('device-through-symlink: a fifo written through a symlink out of the root is refused', (t) =>
    runHostile(t, {
      layers: () => [
        [
          { name: 'evil', type: '2', linkname: '../sentinel' },
          { name: 'evil/fifo', type: '6' },
        ],
      ],
      refused: 'evil/fifo',
    }))
  it('symlink-loop: a -> b, b -> a, then a/x is refused', (t) =>
    runHostile(t, {
      layers: () => [
        [
          { name: 'a', type: '2', linkname: 'b' },
          { name: 'b', type: '2', linkname: 'a' },
          { name: 'a/x', data: 'x' },
        ],
      ],
      refused: 'a/x',
    }))
  it('symlink-chain-too-long: more than MAX_SYMLINK_HOPS links is refused', (t) =>
    runHostile(t, {
      layers: () => {
        const specs: TarSpec[] = [{ name: 'real/', mode: 0o755 }]
        for (let i = 0; i <= MAX_SYMLINK_HOPS; i++) specs.push({ name: `l${i}`, type: '2', linkname: i === MAX_SYMLINK_HOPS ? 'real' : `l${i + 1}` })
        specs.push({ name: 'l0/x', data: 'x' })
        return [specs]
      },
      refused: 'l0/x',
    }))
})

describe('path safety: named helpers', () => {
  it('entryComponents cleans names, reads absolute names inside the root, refuses climbing', () => {
    assert.deepEqual(entryComponents('./a//b/./c/', 'e'), ['a', 'b', 'c'])
    assert.deepEqual(entryComponents('a/b/../c', 'e'), ['a', 'c'])
    assert.deepEqual(entryComponents('./', 'e'), [])
    assert.deepEqual(entryComponents('/etc/passwd', 'e'), ['etc', 'passwd'])
    assert.deepEqual(entryComponents('/', 'e'), [])
    for (const bad of ['..', '../x', 'a/../../x', '/../x', 'a\0b']) {
      assert.throws(
        () => entryComponents(bad, bad),
        (e: unknown) => isLadingError(e, 'UNSAFE_PATH'),
        bad,
      )
    }
  })

  it('resolveInRoot follows symlinks only within the root, with .. clamped at the root', (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const root = path.join(dir, 'root')
    mkdirSync(path.join(root, 'etc'), { recursive: true })
    writeFileSync(path.join(dir, 'passwd'), 'host file')
    symlinkSync('../../../../passwd', path.join(root, 'etc/passwd'))
    assert.equal(resolveInRoot(root, '/etc/passwd'), path.join(root, 'passwd'))
    symlinkSync(path.join(dir, 'passwd'), path.join(root, 'etc/abs'))
    assert.equal(resolveInRoot(root, 'etc/abs'), path.join(root, dir, 'passwd'))
    symlinkSync('loop', path.join(root, 'loop'))
    assert.throws(
      () => resolveInRoot(root, '/loop/x'),
      (e: unknown) => isLadingError(e, 'UNSAFE_PATH'),
    )
    assert.equal(resolveInRoot(root, '/missing/dir/file'), path.join(root, 'missing/dir/file'))
  })

  it('RootResolver in refuse mode reports a climbing symlink; the cache is dropped by forget()', (t) => {
    const dir = tempDir(t, { prefix: 'lading-apply-' })
    const r = new RootResolver(dir)
    mkdirSync(path.join(dir, 'a'))
    assert.equal(r.resolveParent(['a', 'f'], 'a/f', 'existing')?.host, path.join(dir, 'a/f'))
    // Replace the directory by a symlink out of the root: without forget() the cache would lie.
    rmSync(path.join(dir, 'a'), { recursive: true })
    symlinkSync('..', path.join(dir, 'a'))
    r.forget('a')
    assert.throws(
      () => r.resolveParent(['a', 'f'], 'a/f', 'existing'),
      (e: unknown) => isLadingError(e, 'UNSAFE_PATH'),
    )
  })
})
