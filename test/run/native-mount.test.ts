/**
 * The run path's system calls (native/mount.c through src/io/native-fs.ts) and the contract
 * of rootfs.ts unmount(), with the addon and with its fallback (util-linux umount). Needs root
 * to mount; skips with the reason otherwise (fails under CI=true).
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, statfsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { hintTreeParent, MNT_DETACH, nativeMount, nativeMountUnavailableReason } from '../../src/io/native-fs.js'
import { isMounted, unmount } from '../../src/run/rootfs.js'
import { tempDir } from '../fixtures/temp.js'
import { ladingOk } from '../helpers/cli.js'
import { inCI } from '../helpers/tools.js'
import { canRun, makeStore, MINBASE, mountsUnder } from './helpers.js'

function asRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true
  if (inCI()) throw new Error('needs root (mount), and CI=true forbids skipping')
  t.skip('needs root (mount)')
  return false
}

/** The addon, or a skip (a failure in CI, where scripts/build-native.sh must have built it). */
function addon(t: TestContext): ReturnType<typeof nativeMount> {
  const m = nativeMount()
  if (m) return m
  const why = `the native mount addon is not built (${nativeMountUnavailableReason()}; bash scripts/build-native.sh)`
  if (inCI()) throw new Error(`${why}, and CI=true forbids skipping`)
  t.skip(why)
  return undefined
}

function mountTmpfs(dir: string): void {
  const r = spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', dir], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
}

describe('native mount addon (native/mount.c)', () => {
  it('mount, umount2, syncfs and syncfsStart work; failures carry the errno name as code', async (t) => {
    if (!asRoot(t)) return
    const m = addon(t)
    if (!m) return
    const dir = tempDir(t)
    const point = path.join(dir, 'point')
    mkdirSync(point)
    m.mount('tmpfs', point, 'tmpfs', 0, 'size=1m,mode=0700')
    assert.equal(isMounted(point), true)
    writeFileSync(path.join(point, 'f'), 'x')
    m.syncfs(point)
    assert.equal(await m.syncfsStart(point), undefined)
    m.umount2(point, 0)
    assert.equal(isMounted(point), false)
    assert.throws(() => m.umount2(point, 0), { code: 'EINVAL', syscall: 'umount2' }, 'not a mount point')
    assert.throws(() => m.syncfs(path.join(dir, 'absent')), { code: 'ENOENT' })
    assert.throws(() => m.syncfsStart(path.join(dir, 'absent')), { code: 'ENOENT' }, 'a bad path throws at once, not in the promise')
    assert.throws(() => m.mount('tmpfs', path.join(dir, 'absent'), 'tmpfs', 0, ''), { code: 'ENOENT', syscall: 'mount' })
  })

  it('relative paths in the mount data resolve from cwd, and the process keeps its own cwd', (t) => {
    if (!asRoot(t)) return
    const m = addon(t)
    if (!m) return
    const dir = tempDir(t)
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(path.join(dir, d))
    writeFileSync(path.join(dir, 'lower', 'file'), 'from lower')
    const before = process.cwd()
    m.mount('overlay', path.join(dir, 'merged'), 'overlay', 0, 'lowerdir=lower,upperdir=upper,workdir=work', dir)
    try {
      assert.equal(process.cwd(), before)
      assert.equal(spawnSync('cat', [path.join(dir, 'merged', 'file')], { encoding: 'utf8' }).stdout, 'from lower')
    } finally {
      // (not t.after: the temp dir's hook, registered first, runs first)
      unmount(path.join(dir, 'merged'))
    }
    // A failed mount changes back too.
    assert.throws(() => m.mount('overlay', path.join(dir, 'merged'), 'overlay', 0, 'lowerdir=absent,upperdir=upper,workdir=work', dir), { syscall: 'mount' })
    assert.equal(process.cwd(), before)
  })

  it('native mount: a path with a NUL byte is refused, not cut short at the NUL', (t) => {
    if (!asRoot(t)) return
    const m = addon(t)
    if (!m) return
    const dir = tempDir(t)
    // "<dir>\0/x" cut at the NUL would be <dir> itself: a mount over the wrong directory.
    assert.throws(() => m.mount('tmpfs', `${dir}\0/x`, 'tmpfs', 0, ''), TypeError)
    assert.throws(() => m.umount2(`${dir}\0/x`, MNT_DETACH), TypeError)
    assert.throws(() => m.syncfs(`${dir}\0/x`), TypeError)
    assert.throws(() => m.syncfsStart(`${dir}\0/x`), TypeError)
    assert.equal(isMounted(dir), false)
  })
})

describe('rootfs.ts unmount(): afterwards nothing is mounted there, or it throws', () => {
  for (const variant of ['addon', 'umount(8)'] as const) {
    it(`unmount takes off stacked mounts and detaches a busy one (${variant})`, async (t) => {
      if (!asRoot(t)) return
      if (variant === 'addon' && !addon(t)) return
      // The fallback is chosen per process (LADING_NATIVE_MOUNT=0): run it in a child.
      const dir = tempDir(t)
      const point = path.join(dir, 'point')
      mkdirSync(point)
      mountTmpfs(point)
      mountTmpfs(point)
      // A process whose cwd is inside the mount keeps it busy: umount fails with EBUSY.
      const busy = spawn('sleep', ['30'], { cwd: point, stdio: 'ignore' })
      t.after(() => busy.kill('SIGKILL'))
      await new Promise((r) => setTimeout(r, 100))
      if (variant === 'addon') {
        unmount(point)
      } else {
        const script = `import { unmount } from ${JSON.stringify(new URL('../../src/run/rootfs.js', import.meta.url).href)}; unmount(${JSON.stringify(point)})`
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, LADING_NATIVE_MOUNT: '0' } })
        assert.equal(r.status, 0, r.stderr)
      }
      assert.equal(isMounted(point), false)
      unmount(point) // not a mount point any more: nothing to do, no error
      unmount(path.join(dir, 'absent'))
    })
  }
})

describe('lading run without the native addon (LADING_NATIVE_MOUNT=0: mount(8), umount(8), sync -f)', () => {
  it('a first run unpacks and runs, and --rm leaves nothing mounted', (t) => {
    if (!canRun(t)) return
    const store = makeStore(t, ['minbase'])
    const env = { LADING_NATIVE_MOUNT: '0' }
    const r = store.run(['run', '--rm', '-q', MINBASE, 'sh', '-c', 'echo ok > /tmp/x && cat /tmp/x'], { env })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'ok\n')
    assert.deepEqual(mountsUnder(store.dir), [])
    const kept = store.run(['run', '-q', '--name', 'kept', MINBASE, 'true'], { env })
    assert.equal(kept.status, 0, kept.stderr)
    assert.deepEqual(mountsUnder(store.dir), [], 'unmounted when the container exited')
    assert.equal(store.run(['container', 'rm', 'kept'], { env }).status, 0)
  })
})

/** ext4's magic (statfs f_type): where FS_TOPDIR_FL exists. */
const EXT4_MAGIC = 0xef53

function hasTopdirFlag(dir: string): boolean {
  const r = spawnSync('lsattr', ['-d', dir], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return /^\S*T\S*\s/.test(r.stdout)
}

describe("tree parents get ext4's top-directory flag (hintTreeParent, native/mount.c topdir)", () => {
  it('topdir sets the flag on ext4, answers false elsewhere, and never throws for a path it cannot flag', (t) => {
    const m = addon(t)
    if (!m) return
    const dir = tempDir(t)
    const onExt4 = statfsSync(dir).type === EXT4_MAGIC
    assert.equal(m.topdir(dir), onExt4)
    if (onExt4) assert.equal(hasTopdirFlag(dir), true, 'lsattr shows T')
    assert.equal(m.topdir(dir), onExt4, 'idempotent')
    assert.equal(m.topdir(path.join(dir, 'absent')), false)
    assert.equal(m.topdir('/proc/self'), false, 'no such flag on procfs')
    assert.throws(() => m.topdir(`${dir}\0/x`), TypeError)
    hintTreeParent(`${dir}\0/x`) // the hint swallows what the addon refuses
    hintTreeParent(path.join(dir, 'absent'))
  })

  it("a first run flags the store's layer directory, and a build its cache's work directory, where the file system has the flag", (t) => {
    if (!canRun(t)) return
    if (!addon(t)) return
    const store = makeStore(t, ['minbase'])
    const onExt4 = statfsSync(store.dir).type === EXT4_MAGIC
    const r = store.run(['run', '--rm', '-q', MINBASE, 'true'])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(hasTopdirFlag(path.join(store.dir, 'layers', 'sha256')), onExt4)
    const dir = tempDir(t)
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY Dockerfile /\n')
    ladingOk(['build', '--progress', 'plain', '--cache-dir', path.join(dir, 'cache'), '-t', `oci:${path.join(dir, 'out')}:x`, dir])
    assert.equal(hasTopdirFlag(path.join(dir, 'cache', 'work')), onExt4)
  })
})
