import { test } from 'node:test'
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { isLadingError } from '../../src/errors.js'
import { defaultRuntimeSpec, processArgs, runtimeAnnotations, runtimeConfig, DEFAULT_PATH } from '../../src/bundle/runtime-config.js'
import { rootFileReader } from '../../src/bundle/root-file.js'
import { parseGroup, parsePasswd, resolveUser, type RootFileReader } from '../../src/bundle/user.js'
import type { ImageConfig } from '../../src/spec/types.js'
import type { Digest } from '../../src/digest/digest.js'
import { tempDir } from '../fixtures/temp.js'

/** An image config; `config` undefined leaves the field out, as an image without one has it. */
function image(config: ImageConfig['config'] | undefined, extra: Partial<ImageConfig> = {}): ImageConfig {
  return { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] as Digest[] }, ...(config === undefined ? {} : { config }), ...extra }
}

const PASSWD = [
  'root:x:0:0:root:/root:/bin/bash',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  '# a comment',
  'broken line without fields',
  'alice:x:1000:1000:Alice:/home/alice:/bin/sh',
  'bob:x:1001:100::/home/bob:/bin/sh',
  'weird:x:notanumber:1::/:/bin/sh',
].join('\n')
const GROUP = ['root:x:0:', 'users:x:100:alice', 'alice:x:1000:', 'audio:x:29:alice,bob', 'video:x:44: bob , alice ', 'staff:x:50:'].join('\n')

const files =
  (passwd: string | undefined, group: string | undefined): RootFileReader =>
  async (p) =>
    p === '/etc/passwd' ? passwd : p === '/etc/group' ? group : undefined
const etc = files(PASSWD, GROUP)

test('conversion.md Entrypoint/Cmd: Cmd appended to Entrypoint; either alone; neither keeps runc default', async () => {
  assert.deepEqual(processArgs(image({ Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hi'] })), ['/bin/sh', '-c', 'echo hi'])
  assert.deepEqual(processArgs(image({ Entrypoint: ['/entry'] })), ['/entry'])
  assert.deepEqual(processArgs(image({ Cmd: ['/bin/bash'] })), ['/bin/bash'])
  assert.deepEqual(processArgs(image({ Entrypoint: null, Cmd: ['x'] })), ['x'])
  assert.deepEqual((await runtimeConfig(image({ Entrypoint: ['/e'], Cmd: ['a', 'b'] }))).process.args, ['/e', 'a', 'b'])
  assert.deepEqual((await runtimeConfig(image({}))).process.args, ['sh'])
  assert.deepEqual((await runtimeConfig(image(undefined))).process.args, ['sh'])
})

test('conversion.md Env verbatim: PATH only added when absent, never overriding the image', async () => {
  const a = await runtimeConfig(image({ Env: ['A=1', 'B=two=2'], Cmd: ['x'] }))
  assert.deepEqual(a.process.env, [DEFAULT_PATH, 'A=1', 'B=two=2'])
  const b = await runtimeConfig(image({ Env: ['PATH=/custom', 'A=1'], Cmd: ['x'] }))
  assert.deepEqual(b.process.env, ['PATH=/custom', 'A=1'])
})

test('cwd defaults to "/", WorkingDir copied verbatim, relative WorkingDir refused', async () => {
  assert.equal((await runtimeConfig(image({ Cmd: ['x'] }))).process.cwd, '/')
  assert.equal((await runtimeConfig(image({ Cmd: ['x'], WorkingDir: '/srv/app' }))).process.cwd, '/srv/app')
  await assert.rejects(
    runtimeConfig(image({ Cmd: ['x'], WorkingDir: 'rel' })),
    (e) => isLadingError(e, 'INVALID_CONFIG') && /WorkingDir/.test((e as Error).message),
  )
})

test('passwd and group parsing skips comments and malformed lines', () => {
  const p = parsePasswd(PASSWD)
  assert.deepEqual(
    p.map((e) => e.name),
    ['root', 'daemon', 'alice', 'bob'],
  )
  assert.deepEqual(p[2], { name: 'alice', uid: 1000, gid: 1000, home: '/home/alice' })
  const g = parseGroup(GROUP)
  assert.deepEqual(g.find((e) => e.name === 'video')?.members, ['bob', 'alice'])
})

test('Config.User forms: name, uid, name:group, uid:gid, name:gid, uid:group, unset', async () => {
  // name: uid/gid from passwd, additionalGids from /etc/group membership
  assert.deepEqual(await resolveUser('alice', etc), { user: { uid: 1000, gid: 1000, additionalGids: [100, 29, 44] }, home: '/home/alice' })
  // uid: verbatim; gid from the passwd entry; no additionalGids (conversion.md SHOULD NOT)
  assert.deepEqual(await resolveUser('1001', etc), { user: { uid: 1001, gid: 100 }, home: '/home/bob' })
  // unknown numeric uid: verbatim, gid 0
  assert.deepEqual(await resolveUser('4242', etc), { user: { uid: 4242, gid: 0 } })
  // name:group: group resolved, no additionalGids because a group was specified
  assert.deepEqual(await resolveUser('alice:audio', etc), { user: { uid: 1000, gid: 29 }, home: '/home/alice' })
  assert.deepEqual(await resolveUser('4242:4343', etc), { user: { uid: 4242, gid: 4343 } })
  assert.deepEqual(await resolveUser('bob:7', etc), { user: { uid: 1001, gid: 7 }, home: '/home/bob' })
  assert.deepEqual(await resolveUser('1000:staff', etc), { user: { uid: 1000, gid: 50 }, home: '/home/alice' })
  assert.deepEqual(await resolveUser(undefined, etc), { user: { uid: 0, gid: 0 }, home: '/root' })
  assert.deepEqual(await resolveUser('', files(undefined, undefined)), { user: { uid: 0, gid: 0 } })
})

test('Config.User naming a missing user or group is an error (conversion.md MUST)', async () => {
  await assert.rejects(resolveUser('mallory', etc), (e) => isLadingError(e, 'INVALID_CONFIG') && /user "mallory" not found/.test((e as Error).message))
  await assert.rejects(resolveUser('alice:wheel', etc), (e) => isLadingError(e, 'INVALID_CONFIG') && /group "wheel" not found/.test((e as Error).message))
  await assert.rejects(resolveUser('alice', files(undefined, undefined)), /not found/)
  await assert.rejects(resolveUser('alice:', etc), /empty user or group/)
})

test('HOME from passwd is added only when the image sets none', async () => {
  const a = await runtimeConfig(image({ User: 'alice', Cmd: ['x'] }), { readRootFile: etc })
  assert.ok(a.process.env?.includes('HOME=/home/alice'))
  assert.deepEqual(a.process.user, { uid: 1000, gid: 1000, additionalGids: [100, 29, 44] })
  const b = await runtimeConfig(image({ User: 'alice', Cmd: ['x'], Env: ['HOME=/mine'] }), { readRootFile: etc })
  assert.deepEqual(
    b.process.env?.filter((e) => e.startsWith('HOME=')),
    ['HOME=/mine'],
  )
})

test('conversion.md annotations: implicit fields, exposedPorts list, Labels take precedence', () => {
  const a = runtimeAnnotations(
    image(
      {
        Labels: { 'org.opencontainers.image.os': 'from-label', custom: 'v' },
        ExposedPorts: { '80/tcp': {}, '53/udp': {} },
        StopSignal: 'SIGINT',
      },
      { author: 'me', created: '2024-01-01T00:00:00Z', variant: 'v8', 'os.version': '10.0', 'os.features': ['a', 'b'] },
    ),
  )
  assert.deepEqual(a, {
    'org.opencontainers.image.os': 'from-label',
    'org.opencontainers.image.architecture': 'amd64',
    'org.opencontainers.image.variant': 'v8',
    'org.opencontainers.image.os.version': '10.0',
    'org.opencontainers.image.os.features': 'a,b',
    'org.opencontainers.image.author': 'me',
    'org.opencontainers.image.created': '2024-01-01T00:00:00Z',
    'org.opencontainers.image.stopSignal': 'SIGINT',
    'org.opencontainers.image.exposedPorts': '80/tcp,53/udp',
    custom: 'v',
  })
  // Absent fields produce no annotation (umoci writes "" for them).
  assert.deepEqual(Object.keys(runtimeAnnotations(image({}))).sort(), ['org.opencontainers.image.architecture', 'org.opencontainers.image.os'])
})

test('Volumes do not become mounts (conversion.md: need not use mountpoints)', async () => {
  const s = await runtimeConfig(image({ Cmd: ['x'], Volumes: { '/data': {} } }))
  assert.ok(!s.mounts.some((m) => m.destination === '/data'))
})

test('Linux defaults: namespaces, mounts, capabilities, masked paths, rlimit, terminal false', () => {
  const s = defaultRuntimeSpec()
  assert.equal(s.process.terminal, false)
  assert.deepEqual(
    s.linux.namespaces.map((n) => n.type),
    ['pid', 'network', 'ipc', 'uts', 'mount'],
  )
  assert.deepEqual(
    s.mounts.map((m) => m.destination),
    ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup'],
  )
  assert.equal(s.mounts.find((m) => m.destination === '/sys')?.type, 'sysfs')
  assert.deepEqual(s.process.capabilities?.bounding, ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'])
  assert.ok(s.linux.maskedPaths?.includes('/proc/kcore'))
  assert.ok(s.linux.readonlyPaths?.includes('/proc/sys'))
  assert.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }])
  assert.equal(s.linux.uidMappings, undefined)
  assert.deepEqual(s.root, { path: 'rootfs' })
})

test('rootless variant: user namespace with mappings, no network namespace, sysfs bound read-only', () => {
  const s = defaultRuntimeSpec({ rootless: true })
  const types = s.linux.namespaces.map((n) => n.type)
  assert.ok(types.includes('user'))
  assert.ok(!types.includes('network'))
  assert.deepEqual(s.linux.uidMappings, [{ containerID: 0, hostID: process.getuid!(), size: 1 }])
  assert.deepEqual(s.linux.gidMappings, [{ containerID: 0, hostID: process.getgid!(), size: 1 }])
  const sys = s.mounts.find((m) => m.destination === '/sys')
  assert.equal(sys?.type, 'bind')
  assert.ok(sys?.options?.includes('ro') && sys.options.includes('rbind'))
  assert.ok(!s.mounts.some((m) => m.type === 'cgroup'))
  assert.ok(!s.mounts.find((m) => m.destination === '/dev/pts')?.options?.includes('gid=5'))
  assert.equal(s.linux.resources, undefined)
  const mapped = defaultRuntimeSpec({
    rootless: true,
    uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }],
    gidMap: [{ containerId: 0, hostId: 200000, size: 10 }],
  })
  assert.deepEqual(mapped.linux.uidMappings, [{ containerID: 0, hostID: 100000, size: 65536 }])
  assert.deepEqual(mapped.linux.gidMappings, [{ containerID: 0, hostID: 200000, size: 10 }])
})

test('security: a symlinked /etc/passwd pointing at a host file is resolved inside the rootfs, never read from the host', async (t) => {
  const dir = tempDir(t)
  const root = path.join(dir, 'rootfs')
  await fsp.mkdir(path.join(root, 'etc'), { recursive: true })
  // The "host" files an attacker wants us to read.
  const hostPasswd = path.join(dir, 'host-passwd')
  await fsp.writeFile(hostPasswd, 'evil:x:4242:4242::/evil:/bin/sh\n')
  await fsp.writeFile(path.join(dir, 'host-group'), 'evilgroup:x:4343:evil\n')

  // 1. absolute symlink to the host file's path: inside the root that path does not exist.
  await fsp.symlink(hostPasswd, path.join(root, 'etc/passwd'))
  const read = rootFileReader(root)
  assert.equal(await read('/etc/passwd'), undefined)
  await assert.rejects(runtimeConfig(image({ User: 'evil', Cmd: ['x'] }), { readRootFile: read }), /user "evil" not found/)

  // 2. relative symlink climbing out: `..` stops at the root, like at `/`.
  await fsp.rm(path.join(root, 'etc/passwd'))
  await fsp.symlink('../../../../../../host-passwd', path.join(root, 'etc/passwd'))
  await fsp.symlink('../../host-group', path.join(root, 'etc/group'))
  assert.equal(await read('/etc/passwd'), undefined)
  assert.equal(await read('/etc/group'), undefined)
  await assert.rejects(runtimeConfig(image({ User: '0:evilgroup', Cmd: ['x'] }), { readRootFile: read }), /group "evilgroup" not found/)

  // 3. the same relative link when the root has a file at that name: the root's is read.
  await fsp.writeFile(path.join(root, 'host-passwd'), 'inside:x:7:7::/in:/bin/sh\n')
  const s = await runtimeConfig(image({ User: 'inside', Cmd: ['x'] }), { readRootFile: read })
  assert.deepEqual(s.process.user, { uid: 7, gid: 7 })

  // 4. /etc itself a symlink to the host's /etc directory.
  await fsp.rm(path.join(root, 'etc'), { recursive: true })
  await fsp.symlink(dir, path.join(root, 'etc'))
  const got = await read('/etc/host-passwd').catch((e: unknown) => e)
  assert.ok(got === undefined || isLadingError(got), `read through /etc -> host dir must not return host data, got ${String(got)}`)
})

test('a rootfs passwd that is a directory or a fifo is refused, not read', async (t) => {
  const dir = tempDir(t)
  await fsp.mkdir(path.join(dir, 'etc/passwd'), { recursive: true })
  await assert.rejects(rootFileReader(dir)('/etc/passwd'), (e) => isLadingError(e) && /not a regular file/.test((e as Error).message))
})

test('security: an oversized /etc/passwd in the rootfs is refused, not read into memory', async (t) => {
  const dir = tempDir(t)
  await fsp.mkdir(path.join(dir, 'etc'))
  await fsp.writeFile(path.join(dir, 'etc/passwd'), Buffer.alloc(2048, 0x61))
  await assert.rejects(rootFileReader(dir, 1024)('/etc/passwd'), (e) => isLadingError(e, 'SIZE_LIMIT'))
})
