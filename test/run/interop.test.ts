/**
 * `lading run` with the world around it: images pulled from (and pushed to) the CNCF registry
 * (docker-registry), a rootless run as the unprivileged test user, and a terminal (-t) given by
 * util-linux's script(1).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ensureTestUser, TEST_USER, testUserIds } from '../layer/helpers/rootless.js'
import { binPath, ladingOk } from '../helpers/cli.js'
import { registryMissing, startRegistry, type RunningRegistry } from '../helpers/registry.js'
import { requireTool } from '../helpers/tools.js'
import { tempDir } from '../fixtures/temp.js'
import { writeTree } from '../fixtures/write-tree.js'
import { canRun, FIXTURE_LAYOUT, makeStore, MINBASE, runnable } from './helpers.js'

describe('lading run: registry, rootless, terminal', () => {
  const store = makeStore({ after })
  let reg: RunningRegistry | undefined
  before(async () => {
    if (!runnable()) return
    store.pull(['minbase'])
    if (registryMissing() === undefined) reg = await startRegistry()
  })
  after(async () => {
    await reg?.stop()
  })

  it('an image pulled by lading pull from docker-registry runs; lading push sends a stored image back', (t) => {
    if (!canRun(t)) return
    const skip = registryMissing()
    if (skip) return t.skip(skip)
    ladingOk(['copy', '-q', '--dest-tls-verify=false', `oci:${FIXTURE_LAYOUT}:minbase`, `docker://${reg!.host}/interop/debian:12`])
    const pulled = store.ok(['pull', '--tls-verify=false', '-q', `${reg!.host}/interop/debian:12`]).stdout
    assert.match(pulled, /^sha256:[0-9a-f]{64}\n$/)
    const r = store.run(['run', '--rm', '-q', '--pull', 'never', `${reg!.host}/interop/debian:12`, 'cat', '/etc/debian_version'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /^12\./)
    store.ok(['push', '-q', '--tls-verify=false', MINBASE, `${reg!.host}/pushed/minbase:v1`])
    const again = store.run(['run', '--rm', '-q', '--pull', 'always', '--tls-verify=false', `${reg!.host}/pushed/minbase:v1`, 'true'])
    assert.equal(again.status, 0, again.stderr)
    const names = (JSON.parse(store.ok(['images', '--json']).stdout) as Array<{ name: string }>).map((i) => i.name).sort()
    assert.deepEqual(names, [`${reg!.host}/interop/debian:12`, `${reg!.host}/pushed/minbase:v1`, MINBASE].sort())
  })

  it('an image built by lading build (RUN through runc) runs with lading run, its RUN output and CMD there', (t) => {
    if (!canRun(t)) return
    const dir = tempDir(t, { prefix: 'lading-run-built-' })
    const ctx = path.join(dir, 'ctx')
    writeTree(ctx, {
      greeting: 'built here\n',
      Dockerfile:
        [
          `FROM oci:${FIXTURE_LAYOUT}:minbase`,
          'COPY greeting /opt/greeting',
          'RUN echo "from RUN" > /opt/ran && rm /etc/issue.net',
          'ENV WHO=builder',
          'CMD ["sh", "-c", "cat /opt/greeting /opt/ran; echo $WHO; test -e /etc/issue.net || echo whiteout-kept"]',
        ].join('\n') + '\n',
    })
    ladingOk(['build', '--cache-dir', path.join(dir, 'cache'), '-t', `oci:${dir}/out:app`, ctx])
    const r = store.run(['run', '--rm', '-q', `oci:${dir}/out:app`])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'built here\nfrom RUN\nbuilder\nwhiteout-kept\n')
  })

  it('rootless: the unprivileged test user runs a container from its own store', (t) => {
    if (!canRun(t)) return
    if (!ensureTestUser()) return t.skip(`cannot create the user ${TEST_USER}`)
    const { uid, gid } = testUserIds()
    const dir = tempDir(t, { prefix: 'lading-run-rootless-' })
    // The fixture's blobs are root's (mode 0600): give the user a copy it can read.
    ladingOk(['copy', '-q', `oci:${FIXTURE_LAYOUT}:minbase`, `oci:${dir}/layout:minbase`])
    spawnSync('chown', ['-R', `${uid}:${gid}`, dir])
    chmodSync(dir, 0o755)
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, XDG_DATA_HOME: path.join(dir, 'data'), XDG_RUNTIME_DIR: dir }
    const asUser = { uid, gid, env, cwd: dir, encoding: 'utf8' } as const
    const r = spawnSync(binPath, ['run', '--rm', `oci:${dir}/layout:minbase`, 'sh', '-c', 'id -u; echo $HOME; test -w /etc && echo writable; exit 5'], asUser)
    assert.equal(r.status, 5, r.stderr)
    assert.equal(r.stdout, '0\n/root\nwritable\n')
    assert.match(r.stderr, /unpacked layer sha256:/)
    assert.match(
      r.stderr,
      /files owned by [0-9:, ]+ \(uid:gid\), which an unprivileged unpack cannot give them/,
      'owners the user cannot give are reported up front',
    )
    assert.ok(existsSync(path.join(dir, 'data', 'lading', 'layers')), 'the store is under $XDG_DATA_HOME/lading')
    const net = spawnSync(binPath, ['run', '--rm', '-q', '--pull', 'never', 'localhost/layout:minbase', 'ls', '/sys/class/net'], asUser)
    assert.equal(net.status, 0, net.stderr)
    assert.equal(net.stdout, 'lo\n', '--network none (the default) has only lo, rootless too')
    // With subordinate ids (subuid(5)) and newuidmap, other users exist in the container.
    if (existsSync('/usr/bin/newuidmap') && spawnSync('grep', ['-q', `^${TEST_USER}:`, '/etc/subuid']).status === 0) {
      const other = spawnSync(
        binPath,
        ['run', '--rm', '-q', '--pull', 'never', '-u', 'nobody', 'localhost/layout:minbase', 'sh', '-c', 'id -u; cat /proc/self/uid_map'],
        asUser,
      )
      assert.equal(other.status, 0, other.stderr)
      assert.match(other.stdout, /^65534\n\s+0\s+\d+\s+1\n\s+1\s+\d+\s+\d+\n$/)
    }
  })

  it('-t gives the container a terminal', (t) => {
    if (!canRun(t)) return
    if (!requireTool(t, 'script')) return // util-linux's script(1) gives lading a pseudo-terminal
    const cmd = `${binPath} run --store ${store.dir} --rm -q -t ${MINBASE} sh -c 'test -t 0 && test -t 1 && echo "tty:$TERM"'`
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })
    assert.equal(r.status, 0, r.stderr + r.stdout)
    assert.match(r.stdout, /tty:xterm/)
    const plain = store.run(['run', '--rm', '-q', MINBASE, 'sh', '-c', 'test -t 1 || echo no-tty'])
    assert.equal(plain.stdout, 'no-tty\n')
  })
})
