/**
 * Lading's unpack against umoci's on the real Debian fixture images (scripts/fixtures.sh), and
 * `runc run` of a bundle Lading made.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { debianFixtures } from '../fixtures/debian.js'
import { requireTool } from '../helpers/tools.js'
import { ladingOk, run, runOk } from '../helpers/cli.js'
import { diffTrees, treeOf } from '../fixtures/tree.js'
import { tempDir } from '../fixtures/temp.js'

/**
 * config.json keys where Lading differs from umoci 0.4.7 on purpose (see the comment at the top
 * of src/bundle/runtime-config.ts for the spec reason of each). Everything else must be equal.
 */
function normalise(cfg: Record<string, any>): Record<string, any> {
  const c = structuredClone(cfg)
  delete c.ociVersion
  delete c.hostname
  delete c.process.terminal
  delete c.process.capabilities.inheritable
  c.process.env = c.process.env.filter((e: string) => !e.startsWith('TERM='))
  delete c.linux.maskedPaths
  delete c.linux.readonlyPaths
  for (const [k, v] of Object.entries(c.annotations ?? {})) if (v === '') delete c.annotations[k]
  return c
}

for (const tag of ['minbase', 'layered']) {
  test(
    `unpack of the Debian ${tag} image equals umoci unpack path by path, and config.json equals umoci's but for the documented differences`,
    { timeout: 240_000 },
    async (t) => {
      const fx = debianFixtures(t)
      if (!fx || !requireTool(t, 'umoci')) return
      const dir = tempDir(t)
      const ours = path.join(dir, 'lading')
      const theirs = path.join(dir, 'umoci')
      ladingOk(['unpack', '--image', `${fx.layout}:${tag}`, ours])
      runOk('umoci', ['unpack', '--image', `${fx.layout}:${tag}`, theirs])
      const a = treeOf(path.join(ours, 'rootfs'), { nlink: true })
      const b = treeOf(path.join(theirs, 'rootfs'), { nlink: true })
      assert.ok(a.size > 5000, `expected a full rootfs, got ${a.size} paths`)
      assert.deepEqual(diffTrees(a, b, ['lading', 'umoci']), [])
      if (tag === 'layered') {
        // The fixture's special paths are really there (so the comparison covered them).
        assert.equal(a.get('opt/lading/setuid')?.mode, 0o4755)
        assert.equal(a.get('opt/lading/mode000-file')?.mode, 0)
        assert.equal(a.get('usr/share/doc'), undefined)
        assert.equal(a.get('etc/motd'), undefined)
        assert.equal(a.get('opt/lading/fifo')?.type, 'fifo')
        assert.ok(a.get('opt/lading/cap-net-raw')?.xattrs?.includes('security.capability'))
      }
      const cfgOurs = JSON.parse(await fsp.readFile(path.join(ours, 'config.json'), 'utf8'))
      const cfgTheirs = JSON.parse(await fsp.readFile(path.join(theirs, 'config.json'), 'utf8'))
      assert.deepEqual(normalise(cfgOurs), normalise(cfgTheirs))
      // The documented differences are what we say they are.
      assert.equal(cfgOurs.process.terminal, false)
      assert.equal(cfgOurs.process.capabilities.inheritable, undefined)
      const state = JSON.parse(await fsp.readFile(path.join(ours, 'lading.json'), 'utf8'))
      assert.equal(state.tag, tag)
      assert.match(state.manifest.digest, /^sha256:[0-9a-f]{64}$/)
      assert.equal(state.layout, fx.layout)
    },
  )
}

test('runc run executes a bundle made by lading unpack', { timeout: 120_000 }, async (t) => {
  const fx = debianFixtures(t)
  if (!fx || !requireTool(t, 'runc')) return
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') throw new Error('runc run needs root, and CI=true forbids skipping')
    t.skip('runc run needs root')
    return
  }
  const dir = tempDir(t)
  const id = `lading-test-${process.pid}-${Date.now()}`
  try {
    const bundle = path.join(dir, 'bundle')
    ladingOk(['unpack', '--image', `${fx.layout}:minbase`, bundle])
    const cfgFile = path.join(bundle, 'config.json')
    const cfg = JSON.parse(await fsp.readFile(cfgFile, 'utf8'))
    cfg.process.args = ['/bin/sh', '-c', 'echo ok from $(cat /etc/debian_version | cut -c1-2); id -u']
    await fsp.writeFile(cfgFile, JSON.stringify(cfg))
    const r = run('runc', ['run', '--bundle', bundle, id], { timeout: 60_000 })
    assert.equal(r.status, 0, `runc run failed: ${r.stderr}`)
    assert.match(r.stdout, /^ok from 12\n0\n$/)
  } finally {
    run('runc', ['delete', '-f', id])
  }
})

test(
  'rootless unpack of the Debian layered image as an unprivileged user, mode-000 files included, and rootless runc run of it',
  { timeout: 180_000 },
  async (t) => {
    const fx = debianFixtures(t)
    if (!fx || !requireTool(t, 'runuser')) return
    const user = 'ladingtest'
    if (run('id', ['-u', user]).status !== 0) {
      if (process.getuid?.() === 0) runOk('useradd', ['--create-home', '--shell', '/bin/sh', user])
      else {
        if (process.env.CI === 'true') throw new Error(`user ${user} missing, and CI=true forbids skipping`)
        t.skip(`user ${user} missing (useradd ${user})`)
        return
      }
    }
    const uid = Number(runOk('id', ['-u', user]).stdout.trim())
    const gid = Number(runOk('id', ['-g', user]).stdout.trim())
    const dir = tempDir(t)
    try {
      await fsp.chmod(dir, 0o755)
      const work = path.join(dir, 'work')
      await fsp.mkdir(work)
      await fsp.chown(work, uid, gid)
      // The fixture layout's blobs are root's (mode 0600): give the user its own copy.
      const layout = path.join(work, 'layout')
      runOk('cp', ['-r', fx.layout, layout])
      runOk('chown', ['-R', `${uid}:${gid}`, layout])
      const bundle = path.join(work, 'bundle')
      const { cliPath } = await import('../helpers/cli.js')
      const r = run('runuser', ['-u', user, '--', process.execPath, cliPath, 'unpack', '--rootless', '--image', `${layout}:layered`, bundle])
      assert.equal(r.status, 0, `rootless unpack failed: ${r.stderr}`)
      const root = path.join(bundle, 'rootfs')
      const tree = treeOf(root, { mtimes: false })
      // Mode-000 entries exist with mode 000 (umoci issue 222), their contents extracted.
      assert.equal(tree.get('opt/lading/mode000-file')?.mode, 0)
      assert.equal(tree.get('opt/lading/mode000-dir')?.mode, 0)
      assert.ok(
        [...tree.keys()].some((p) => p.startsWith('opt/lading/mode000-dir/')),
        'the file inside the mode-000 dir was extracted',
      )
      // Everything is owned by the unprivileged user (no chown happened).
      for (const [p, rec] of tree) assert.equal(rec.uid, uid, `${p} owned by ${rec.uid}`)
      const cfg = JSON.parse(await fsp.readFile(path.join(bundle, 'config.json'), 'utf8'))
      assert.deepEqual(cfg.linux.uidMappings, [{ containerID: 0, hostID: uid, size: 1 }])
      assert.ok(cfg.linux.namespaces.some((n: { type: string }) => n.type === 'user'))
      // The unprivileged user runs the rootless bundle with runc (user namespace, no network ns).
      if (requireTool(t, 'runc')) {
        cfg.process.args = ['/bin/sh', '-c', 'echo rootless ok; id -u']
        const cfgFile = path.join(bundle, 'config.json')
        await fsp.writeFile(cfgFile, JSON.stringify(cfg))
        const stateDir = path.join(work, 'runc-state')
        const id = `lading-rootless-${process.pid}-${Date.now()}`
        try {
          const rr = run('runuser', ['-u', user, '--', 'runc', '--root', stateDir, 'run', '--bundle', bundle, id], {
            timeout: 60_000,
            env: { ...process.env, XDG_RUNTIME_DIR: stateDir },
          })
          assert.equal(rr.status, 0, `rootless runc run failed: ${rr.stderr}`)
          assert.equal(rr.stdout, 'rootless ok\n0\n')
        } finally {
          run('runuser', ['-u', user, '--', 'runc', '--root', stateDir, 'delete', '-f', id])
        }
      }
      // The same tree as a root unpack, but for ownership and the skipped devices.
      const asRoot = path.join(dir, 'root')
      ladingOk(['unpack', '--image', `${fx.layout}:layered`, asRoot])
      const full = treeOf(path.join(asRoot, 'rootfs'), { mtimes: false })
      const strip = (m: typeof tree) =>
        new Map([...m].filter(([, r]) => r.type !== 'char' && r.type !== 'block').map(([p, { xattrs: _xattrs, ...r }]) => [p, { ...r, uid: 0, gid: 0 }]))
      assert.deepEqual(diffTrees(strip(tree), strip(full), ['rootless', 'root']), [])
    } finally {
      // The unprivileged user's mode-000 dirs: root can remove them anyway.
    }
  },
)

test('an unpack interrupted by SIGINT removes the bundle it was making and exits 130', { timeout: 120_000 }, async (t) => {
  const fx = debianFixtures(t)
  if (!fx) return
  const dir = tempDir(t)
  const bundle = path.join(dir, 'bundle')
  const { spawn } = await import('node:child_process')
  const { cliPath } = await import('../helpers/cli.js')
  const child = spawn(process.execPath, [cliPath, 'unpack', '--image', `${fx.layout}:layered`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  // Interrupt once extraction is under way (the rootfs has its first directories).
  const started = Date.now()
  while (Date.now() - started < 60_000) {
    const names = await fsp.readdir(path.join(bundle, 'rootfs')).catch(() => [] as string[])
    if (names.length >= 3) break
    await new Promise((r) => setTimeout(r, 10))
  }
  child.kill('SIGINT')
  const code = await exited
  assert.equal(code, 130, stderr)
  assert.match(stderr, /interrupted/)
  await assert.rejects(fsp.access(bundle), 'the bundle directory is gone')
})
