/**
 * `lading run` end to end on runc, with the Debian fixture images in a temp store (issue 14's
 * "What must be shown"). Needs root (runc, overlay mounts); skips with the reason otherwise.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { binPath } from '../helpers/cli.js'
import { tempDir } from '../fixtures/temp.js'
import { inCI } from '../helpers/tools.js'
import { canRun, FIXTURE_LAYOUT, LAYERED, makeStore, MINBASE, mountsUnder, runnable, unpackedLayers } from './helpers.js'

describe('lading run: the command, its output and its exit status', () => {
  const store = makeStore({ after })
  before(() => {
    if (runnable()) store.pull(['minbase'])
  })

  it('exit 3 passes through; stdout and stderr arrive as written', (t) => {
    if (!canRun(t)) return
    const r = store.run(['run', '--rm', '-q', MINBASE, '/bin/sh', '-c', 'echo out1; echo err1 >&2; echo out2; exit 3'])
    assert.equal(r.status, 3, r.stderr)
    assert.equal(r.stdout, 'out1\nout2\n')
    assert.equal(r.stderr, 'err1\n')
  })

  it("podman's exit statuses: 127 for a command not found, 126 for one that cannot be invoked, 125 for Lading's own failure", (t) => {
    if (!canRun(t)) return
    const nf = store.run(['run', '--rm', MINBASE, 'no-such-command'])
    assert.equal(nf.status, 127)
    assert.match(nf.stderr, /^lading: "no-such-command": executable file not found in \$PATH\n$/)
    const ni = store.run(['run', '--rm', MINBASE, '/etc/passwd'])
    assert.equal(ni.status, 126)
    assert.match(ni.stderr, /cannot invoke "\/etc\/passwd"/)
    const missing = store.run(['run', '--rm', '--pull', 'never', 'localhost/not-there:1', 'true'])
    assert.equal(missing.status, 125)
    assert.match(missing.stderr, /^lading: image "localhost\/not-there:1" is not in the store/)
    assert.equal(store.run(['run', '--network', 'bridge', MINBASE, 'true']).status, 2, 'usage errors exit 2')
    assert.deepEqual(readdirSync(path.join(store.dir, 'containers')), [], 'failed runs leave no container')
  })

  it('env, env-file, user, workdir and entrypoint overrides take effect', (t) => {
    if (!canRun(t)) return
    const dir = tempDir(t, { prefix: 'lading-run-env-' })
    const envFile = path.join(dir, 'env')
    writeFileSync(envFile, '# comment\nFROM_FILE=yes\n\nPATH=/usr/bin:/bin\n')
    const r = store.run([
      'run',
      '--rm',
      '-q',
      '-e',
      'FOO=bar baz',
      '--env-file',
      envFile,
      '-u',
      'nobody',
      '-w',
      '/tmp',
      MINBASE,
      'sh',
      '-c',
      'echo "$FOO|$FROM_FILE|$PATH|$HOME"; id -un; id -u; pwd',
    ])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'bar baz|yes|/usr/bin:/bin|/nonexistent\nnobody\n65534\n/tmp\n')
    const ep = store.run(['run', '--rm', '-q', '--entrypoint', '/bin/echo', MINBASE, 'via', 'entrypoint'])
    assert.equal(ep.stdout, 'via entrypoint\n')
    const json = store.run(['run', '--rm', '-q', '--entrypoint', '["/bin/sh","-c","echo $0 $1"]', MINBASE, 'a', 'b'])
    assert.equal(json.stdout, 'a b\n')
    const numeric = store.run(['run', '--rm', '-q', '-u', '1234:5678', MINBASE, 'sh', '-c', 'id -u; id -g'])
    assert.equal(numeric.stdout, '1234\n5678\n')
  })

  it('a volume is visible read-write and read-only; --tmpfs and --read-only work', (t) => {
    if (!canRun(t)) return
    const dir = tempDir(t, { prefix: 'lading-run-vol-' })
    writeFileSync(path.join(dir, 'in'), 'from host\n')
    const rw = store.run(['run', '--rm', '-q', '-v', `${dir}:/data`, MINBASE, 'sh', '-c', 'cat /data/in; echo from container > /data/out'])
    assert.equal(rw.status, 0, rw.stderr)
    assert.equal(rw.stdout, 'from host\n')
    assert.equal(readFileSync(path.join(dir, 'out'), 'utf8'), 'from container\n')
    const ro = store.run(['run', '--rm', '-q', '-v', `${dir}:/data:ro`, MINBASE, 'sh', '-c', 'cat /data/in && echo x > /data/nope'])
    assert.notEqual(ro.status, 0)
    assert.equal(ro.stdout, 'from host\n')
    assert.match(ro.stderr, /Read-only file system/)
    assert.ok(!existsSync(path.join(dir, 'nope')))
    const rofs = store.run([
      'run',
      '--rm',
      '-q',
      '--read-only',
      '--tmpfs',
      '/scratch',
      MINBASE,
      'sh',
      '-c',
      'echo ok > /scratch/f && cat /scratch/f && touch /etc/x',
    ])
    assert.equal(rofs.stdout, 'ok\n')
    assert.match(rofs.stderr, /Read-only file system/)
  })

  it("--network none has only a loopback interface; --network host sees the host's", (t) => {
    if (!canRun(t)) return
    const none = store.run(['run', '--rm', '-q', '--network', 'none', MINBASE, 'ls', '/sys/class/net'])
    assert.equal(none.status, 0, none.stderr)
    assert.equal(none.stdout, 'lo\n')
    const host = store.run(['run', '--rm', '-q', '--network', 'host', MINBASE, 'ls', '/sys/class/net'])
    assert.deepEqual(host.stdout.trim().split('\n').sort(), readdirSync('/sys/class/net').sort())
  })

  it('--cap-drop and --cap-add change the capability sets; --hostname sets the host name', (t) => {
    if (!canRun(t)) return
    const capEff = (args: string[]): bigint =>
      BigInt('0x' + /CapEff:\s+([0-9a-f]+)/.exec(store.ok(['run', '--rm', '-q', ...args, MINBASE, 'cat', '/proc/self/status']).stdout)![1]!)
    const CAP_KILL = 1n << 5n
    const CAP_SYS_TIME = 1n << 25n
    assert.equal(capEff([]) & CAP_KILL, CAP_KILL)
    assert.equal(capEff(['--cap-drop', 'kill']) & CAP_KILL, 0n)
    assert.equal(capEff(['--cap-add', 'CAP_SYS_TIME']) & CAP_SYS_TIME, CAP_SYS_TIME)
    assert.equal(store.ok(['run', '--rm', '-q', '--hostname', 'box1', MINBASE, 'hostname']).stdout, 'box1\n')
  })

  it('SIGTERM to lading run stops the container (--init forwards it to the command)', async (t) => {
    if (!canRun(t)) return
    if (!existsSync('/usr/bin/tini-static')) {
      if (inCI()) throw new Error('tini not installed (Debian: apt-get install tini), and CI=true forbids skipping')
      return t.skip('tini not installed (Debian: apt-get install tini)')
    }
    const child = spawn(binPath, ['run', '--store', store.dir, '--rm', '-q', '--init', MINBASE, 'sh', '-c', 'echo ready; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('ready')) resolve()
      })
      child.once('exit', () => reject(new Error(`exited before ready: ${out}`)))
    })
    const started = Date.now()
    child.kill('SIGTERM')
    const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    assert.equal(status, 143, 'the command died of SIGTERM (128+15)')
    assert.ok(Date.now() - started < 8000, 'stopped by the signal, not by a timeout')
    assert.deepEqual(readdirSync(path.join(store.dir, 'containers')), [])
  })

  it('--rm leaves nothing behind: no container directory, mount or runc state', (t) => {
    if (!canRun(t)) return
    store.ok(['run', '--rm', '-q', '--name', 'gone', MINBASE, 'sh', '-c', 'echo data > /tmp/f'])
    assert.deepEqual(readdirSync(path.join(store.dir, 'containers')), [])
    assert.deepEqual(mountsUnder(store.dir), [])
    assert.deepEqual(readdirSync(path.join(store.dir, 'runc')), [])
    assert.equal(store.ok(['ps', '-a', '-q']).stdout, '')
  })

  it("a --rm container's overlay is mounted volatile (its unmount syncs nothing); a kept container's is not", async (t) => {
    if (!canRun(t)) return
    /** The mount options (per-mount and super block) of the rootfs mounts under the store. */
    const rootfsMounts = (): string[] =>
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => (l.split(' ')[4] ?? '').startsWith(path.join(store!.dir, 'containers') + '/'))
        .map((l) => l.split(' - ')[1] ?? '')
    store!.ok(['run', '--rm', '-q', MINBASE, 'true']) // the layer unpacked before the timed part
    const child = spawn(binPath, ['run', '--store', store!.dir, '--rm', '-q', MINBASE, 'sh', '-c', 'sleep 3'], { stdio: 'ignore' })
    let done = false
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => {
        done = true
        resolve(code)
      }),
    )
    let seen: string[] = []
    while (!done && seen.length === 0) {
      await new Promise((r) => setTimeout(r, 50))
      seen = rootfsMounts()
    }
    assert.equal(seen.length, 1, 'the --rm container is mounted while it runs')
    assert.match(seen[0]!, /(?:^|,)(?:fsync=)?volatile(?:,|$)/, seen[0])
    assert.equal(await exited, 0)
    store!.ok(['run', '-d', '-q', '--name', 'kept-mount', MINBASE, 'sleep', '30'])
    const kept = rootfsMounts()
    assert.equal(kept.length, 1)
    assert.doesNotMatch(kept[0]!, /volatile/, 'a container that outlives its run keeps the sync of its writable layer')
    store!.ok(['stop', '-t', '0', 'kept-mount'])
    store!.ok(['container', 'rm', 'kept-mount'])
    assert.deepEqual(mountsUnder(store!.dir), [])
  })

  it("LADING_TRACE=1 prints the phases of a run in order, apart from the command's own output", (t) => {
    if (!canRun(t)) return
    const r = store.run(['run', '--rm', '-q', MINBASE, 'sh', '-c', 'echo out; echo err >&2'], { env: { LADING_TRACE: '1' } })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'out\n')
    const lines = r.stderr.split('\n').filter((l) => l !== '')
    const phases = lines.filter((l) => l.startsWith('lading: trace ')).map((l) => /^lading: trace (\d+\.\d) ms (.+)$/.exec(l))
    assert.ok(
      phases.every((m) => m !== null),
      r.stderr,
    )
    const names = phases.map((m) => m![2])
    for (const want of ['store opened', 'image resolved', 'record created', 'rootfs made', 'config written', 'runc started', 'runc exited', 'removed'])
      assert.ok(names.includes(want), `${want} in ${r.stderr}`)
    const times = phases.map((m) => Number(m![1]))
    assert.deepEqual(
      [...times].sort((a, b) => a - b),
      times,
      'times only grow',
    )
    assert.deepEqual(
      lines.filter((l) => !l.startsWith('lading: trace ')),
      ['err'],
    )
    assert.deepEqual(readdirSync(path.join(store.dir, 'containers')), [])
    // Without the variable: nothing but the command's own output.
    assert.equal(store.run(['run', '--rm', '-q', MINBASE, 'true']).stderr, '')
  })

  it('two runs share the unpacked layers (the second unpacks nothing); writes stay in their container', (t) => {
    if (!canRun(t)) return
    const layers = unpackedLayers(store.dir)
    assert.equal(layers.length, 1, 'minbase has one layer, unpacked once by the runs above')
    const layerDir = path.join(store.dir, 'layers', ...layers[0]!.split(':'))
    const before = statSync(layerDir)
    const a = store.run(['run', '--name', 'writer', MINBASE, 'sh', '-c', 'echo mine > /etc/motd; echo new > /root/new'])
    assert.equal(a.status, 0, a.stderr)
    assert.doesNotMatch(a.stderr, /unpacked layer/, 'the layer was already unpacked')
    const b = store.run(['run', '--rm', MINBASE, 'sh', '-c', 'cat /etc/motd; ls /root'])
    assert.doesNotMatch(b.stderr, /unpacked layer/)
    assert.doesNotMatch(b.stdout, /mine|new/, "the other container's writes are invisible")
    assert.deepEqual(unpackedLayers(store.dir), layers, 'the store holds each layer once')
    const after = statSync(layerDir)
    assert.equal(after.ino, before.ino)
    assert.ok(!existsSync(path.join(layerDir, 'diff/root/new')), 'the unpacked layer is not written to')
    assert.notEqual(readFileSync(path.join(layerDir, 'diff/etc/motd'), 'utf8'), 'mine\n')
    store.ok(['container', 'rm', 'writer'])
  })

  it('the overlayfs whiteouts of a layered image take effect in the container', (t) => {
    if (!canRun(t)) return
    store.ok(['pull', '-q', `oci:${FIXTURE_LAYOUT}:layered`])
    const r = store.run([
      'run',
      '--rm',
      '-q',
      LAYERED,
      'sh',
      '-c',
      'test -e /etc/motd && echo motd; test -e /usr/share/doc && echo doc; test -e /opt/lading/to-delete && echo to-delete; test -f /opt/lading/to-replace && echo replaced; test -d /usr/share/common-licenses || echo licenses-file',
    ])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'replaced\nlicenses-file\n')
  })
})

describe('lading run -d, ps, logs, stop, container rm, commit', () => {
  const store = makeStore({ after })
  before(() => {
    if (runnable()) store.pull(['minbase'])
  })

  it('a detached container is listed, logs its output, stops and is removed', async (t) => {
    if (!canRun(t)) return
    const id = store.ok(['run', '-d', '-q', '--name', 'bg', MINBASE, 'sh', '-c', 'echo hello from bg; exec sleep 60']).stdout.trim()
    assert.match(id, /^[0-9a-f]{64}$/)
    const ps = JSON.parse(store.ok(['ps', '--json']).stdout) as Array<{ id: string; name: string; status: string }>
    assert.deepEqual(
      ps.map((c) => [c.id, c.name, c.status]),
      [[id, 'bg', 'running']],
    )
    for (let i = 0; i < 50 && !store.ok(['logs', 'bg']).stdout; i++) await new Promise((r) => setTimeout(r, 50))
    assert.equal(store.ok(['logs', 'bg']).stdout, 'hello from bg\n')
    const rm = store.run(['container', 'rm', 'bg'])
    assert.equal(rm.status, 1)
    assert.match(rm.stderr, /is running: stop it first/)
    store.ok(['stop', '-t', '1', 'bg'])
    assert.equal(store.ok(['ps', '-q']).stdout, '')
    assert.match(store.ok(['ps', '-a']).stdout, /exited\s+bg/)
    store.ok(['container', 'rm', id.slice(0, 12)])
    assert.equal(store.ok(['ps', '-a', '-q']).stdout, '')
    assert.deepEqual(mountsUnder(store.dir), [])
  })

  it("commit makes the container's changes (files, deletions) a new layer that runs", (t) => {
    if (!canRun(t)) return
    store.ok([
      'run',
      '-q',
      '--name',
      'c1',
      MINBASE,
      'sh',
      '-c',
      'echo committed > /etc/motd; rm -rf /var/cache/debconf; rm /etc/issue; mkdir -p /srv/app && echo app > /srv/app/f',
    ])
    const out = store.ok(['commit', 'c1', 'mine:v1']).stdout
    assert.match(out, /^localhost\/mine:v1 sha256:[0-9a-f]{64}\n$/)
    const r = store.run([
      'run',
      '--rm',
      '-q',
      'mine:v1',
      'sh',
      '-c',
      'cat /etc/motd /srv/app/f; test -e /var/cache/debconf && echo debconf; test -e /etc/issue && echo issue; true',
    ])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'committed\napp\n')
    const images = JSON.parse(store.ok(['images', '--json']).stdout) as Array<{ name: string; id: string }>
    assert.deepEqual(images.map((i) => i.name).sort(), [MINBASE, 'localhost/mine:v1'])
    const id = images.find((i) => i.name === 'localhost/mine:v1')!.id.slice('sha256:'.length, 'sha256:'.length + 12)
    assert.equal(store.ok(['run', '--rm', '-q', '--pull', 'never', id, 'cat', '/srv/app/f']).stdout, 'app\n', 'an image id prefix names the image')
    // The image in use by c1 cannot be removed without --force; once c1 is gone it can.
    assert.equal(store.run(['rmi', MINBASE]).status, 1)
    store.ok(['container', 'rm', 'c1'])
    store.ok(['rmi', 'mine:v1'])
  })
})
