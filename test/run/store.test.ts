/**
 * The local image store under concurrency and failure: layers unpacked once however many runs
 * start at once, gc never removing what a container uses, crashes never leaving a partial layer,
 * and the security rule that a layer is cached only under its verified diff_id.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parseDigest } from '../../src/digest/digest.js'
import { isLadingError } from '../../src/errors.js'
import { resolveImage } from '../../src/store/resolve.js'
import { parseImageName, newImageName } from '../../src/run/image-name.js'
import { ensureLayers, layerDir } from '../../src/run/layers.js'
import { copyLayers } from '../../src/run/rootfs.js'
import { rootlessMappings, subordinateRange } from '../../src/run/subids.js'
import { defaultStoreDir, LocalStore } from '../../src/run/store.js'
import { applyImageLayers } from '../../src/bundle/unpack.js'
import { scanTree } from '../../src/layer/snapshot.js'
import { initImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'
import { binPath, ladingAsync } from '../helpers/cli.js'
import { canRun, FIXTURE_LAYOUT, LAYERED, makeStore, MINBASE, runnable, unpackedLayers } from './helpers.js'

/** `lading` in a child without blocking, as these tests run several at once; killed after a generous 10 minutes. */
const runAsync = (args: string[]): ReturnType<typeof ladingAsync> => ladingAsync(args, { killAfterMs: 600_000 })

describe('image names as podman spells them', () => {
  it('short names are docker.io names, and also match local images', () => {
    assert.deepEqual(parseImageName('debian:12').candidates, ['docker.io/library/debian:12', 'localhost/debian:12'])
    assert.deepEqual(parseImageName('debian').candidates, ['docker.io/library/debian:latest', 'localhost/debian:latest'])
    assert.deepEqual(parseImageName('quay.io/a/b:1').candidates, ['quay.io/a/b:1'])
    assert.deepEqual(parseImageName('localhost:5000/app').candidates, ['localhost:5000/app:latest'])
    assert.equal(parseImageName('registry.example/app@sha256:' + 'a'.repeat(64)).storeName, 'registry.example/app@sha256:' + 'a'.repeat(64))
    assert.equal(newImageName('mine'), 'localhost/mine:latest')
    assert.equal(newImageName('quay.io/me/x:2'), 'quay.io/me/x:2')
  })

  it('transport references name images elsewhere, stored under localhost/ or their own name', () => {
    const oci = parseImageName('oci:/var/images/layout:minbase')
    assert.equal(oci.source.transport, 'oci')
    assert.equal(oci.storeName, 'localhost/layout:minbase')
    assert.equal(parseImageName('docker-archive:/tmp/x.tar:example/app:2').storeName, 'docker.io/example/app:2')
    assert.equal(parseImageName('docker://127.0.0.1:5000/a/b:c').storeName, '127.0.0.1:5000/a/b:c')
    assert.throws(
      () => parseImageName('Bad/Name'),
      (e) => isLadingError(e, 'USAGE'),
    )
    assert.throws(
      () => newImageName('oci:/x:y'),
      (e) => isLadingError(e, 'USAGE'),
    )
  })

  it('the default store is per user: /var/lib/lading for root, $XDG_DATA_HOME/lading else', () => {
    assert.equal(defaultStoreDir({ uid: 0, env: {} }), '/var/lib/lading')
    assert.equal(defaultStoreDir({ uid: 1000, env: { XDG_DATA_HOME: '/x/data' } }), '/x/data/lading')
    assert.equal(defaultStoreDir({ uid: 1000, env: { HOME: '/home/u' } }), '/home/u/.local/share/lading')
    assert.equal(defaultStoreDir({ uid: 1000, env: { HOME: '/home/u', XDG_DATA_HOME: 'relative' } }), '/home/u/.local/share/lading')
  })
})

describe('rootless id mappings', () => {
  it('subuid(5) ranges map container ids 1..N; the user alone without one', async (t) => {
    const text = '# comment\nother:200000:65536\nalice:100000:65536\n1002:300000:10\nbad:0:5\n'
    assert.deepEqual(subordinateRange(text, { name: 'alice', id: 1001 }), { start: 100000, count: 65536 })
    assert.deepEqual(subordinateRange(text, { name: 'bob', id: 1002 }), { start: 300000, count: 10 }, 'by numeric id too')
    assert.equal(subordinateRange(text, { name: 'bad', id: 7 }), undefined, "a range at 0 (root's ids) is refused")
    assert.equal(subordinateRange(text, { name: 'carol', id: 1003 }), undefined)
    const dir = tempDir(t, { prefix: 'lading-run-subid-' })
    writeFileSync(path.join(dir, 'subuid'), text)
    writeFileSync(path.join(dir, 'subgid'), text)
    // The helpers must exist for runc to write a wide mapping: a directory without them gives none.
    assert.equal(rootlessMappings({ name: 'alice', uid: 1001, gid: 1001 }, dir, dir), undefined)
    const m = rootlessMappings({ name: 'alice', uid: 1001, gid: 1001 }, dir, '/usr/bin')
    if (existsSync('/usr/bin/newuidmap') && existsSync('/usr/bin/newgidmap')) {
      assert.deepEqual(m?.uidMap, [
        { containerId: 0, hostId: 1001, size: 1 },
        { containerId: 1, hostId: 100000, size: 65536 },
      ])
    }
  })
})

describe('the layer cache: unpacked once, complete or absent, verified', () => {
  it('layer cache: a layer whose config lies about its diff_id is refused and not cached', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (unpacks with owners)')
    const dir = tempDir(t, { prefix: 'lading-run-lie-' })
    const img = await initImage(path.join(dir, 'layout'), {
      layers: [[{ name: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\n' }]],
      extra: {
        rootfs: { type: 'layers', diff_ids: [parseDigest(`sha256:${'1'.repeat(64)}`)] },
      },
    })
    const store = await LocalStore.open(path.join(dir, 'store'))
    const resolved = await resolveImage(img.layout, { tag: 'latest' })
    await assert.rejects(ensureLayers(store, resolved), (e) => isLadingError(e, 'DIGEST_MISMATCH') && /diff_id/.test((e as Error).message))
    assert.ok(!existsSync(layerDir(store, `sha256:${'1'.repeat(64)}`)), 'nothing under the claimed diff_id')
    assert.deepEqual(
      readdirSync(path.join(store.layersDir, 'sha256')).filter((n) => !n.endsWith('.lock')),
      [],
      'no temp directory left',
    )
  })

  it('a crashed unpack (a temp directory of a dead process) is never used, and gc removes it', async (t) => {
    if (!canRun(t)) return
    const store = makeStore(t, ['minbase'])
    const s = await LocalStore.open(store.dir)
    const img = await s.resolve((await s.findImage(MINBASE))!.manifest)
    const final = layerDir(s, img.config.rootfs!.diff_ids![0]!)
    const crashed = path.join(path.dirname(final), `.${path.basename(final)}.tmp-999999-abcdef`)
    mkdirSync(path.join(crashed, 'diff', 'etc'), { recursive: true })
    writeFileSync(path.join(crashed, 'diff', 'etc', 'half'), 'partial')
    const r = store.run(['run', '--rm', MINBASE, 'sh', '-c', 'test -e /etc/half && echo partial; test -x /bin/sh && echo complete'])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'complete\n')
    assert.match(r.stderr, /unpacked layer sha256:/)
    assert.match(store.ok(['store', 'gc']).stdout, /1 stale temporary item/)
    assert.ok(!existsSync(crashed))
    assert.ok(existsSync(final))
  })

  it('SIGTERM while a run unpacks removes the container and the partial layer', async (t) => {
    if (!canRun(t)) return
    const store = makeStore(t, ['layered'])
    const c = spawn(binPath, ['run', '--store', store.dir, '--rm', LAYERED, 'true'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    c.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    // Once the first layer is in, the second (or third) is being unpacked.
    await new Promise<void>((resolve) => {
      c.stderr.on('data', () => {
        if (stderr.includes('unpacked layer')) resolve()
      })
      c.once('exit', () => resolve())
    })
    c.kill('SIGTERM')
    const status = await new Promise<number | null>((resolve) => {
      if (c.exitCode !== null) resolve(c.exitCode)
      else c.once('exit', (code) => resolve(code))
    })
    if (status === 0) return t.skip('the run finished before the signal arrived')
    assert.equal(status, 143, stderr)
    assert.match(stderr, /run interrupted by SIGTERM; the container was removed/)
    assert.deepEqual(readdirSync(path.join(store.dir, 'containers')), [])
    const names = readdirSync(path.join(store.dir, 'layers', 'sha256'))
    assert.deepEqual(
      names.filter((n) => n.includes('.tmp-')),
      [],
      'no partial layer left',
    )
    assert.ok(unpackedLayers(store.dir).length < 3)
  })

  it('8 parallel lading run --rm of a not yet unpacked image unpack each layer once, and all succeed', async (t) => {
    if (!canRun(t)) return
    const store = makeStore(t, ['layered'])
    assert.deepEqual(unpackedLayers(store.dir), [])
    const runs = await Promise.all(
      Array.from({ length: 8 }, (_, i) => runAsync(['run', '--store', store.dir, '--rm', LAYERED, 'sh', '-c', `echo run ${i}; cat /etc/issue >/dev/null`])),
    )
    for (const [i, r] of runs.entries()) {
      assert.equal(r.status, 0, `run ${i}: ${r.stderr}`)
      assert.equal(r.stdout, `run ${i}\n`)
    }
    const unpacks = runs.flatMap((r) => r.stderr.match(/unpacked layer sha256:[0-9a-f]{64}/g) ?? [])
    assert.equal(unpacks.length, 3, 'three layers, each unpacked by one run')
    assert.equal(new Set(unpacks).size, 3)
    assert.equal(unpackedLayers(store.dir).length, 3)
    assert.deepEqual(readdirSync(path.join(store.dir, 'containers')), [])
  })
})

describe('concurrent writers of one store', () => {
  it('parallel pulls keep every image; two runs asking for one name: one gets it, the other is refused', async (t) => {
    if (!canRun(t)) return
    const store = makeStore(t)
    const pulls = await Promise.all(
      ['minbase', 'layered', 'minbase-zstd'].map((tag) => runAsync(['pull', '--store', store.dir, '-q', `oci:${FIXTURE_LAYOUT}:${tag}`])),
    )
    for (const p of pulls) assert.equal(p.status, 0, p.stderr)
    const names = (JSON.parse(store.ok(['images', '--json']).stdout) as Array<{ name: string }>).map((i) => i.name).sort()
    assert.deepEqual(names, ['localhost/layout:layered', 'localhost/layout:minbase', 'localhost/layout:minbase-zstd'])
    const runs = await Promise.all([0, 1].map(() => runAsync(['run', '--store', store.dir, '-q', '--name', 'only-one', MINBASE, 'true'])))
    assert.deepEqual(runs.map((r) => r.status).sort(), [0, 125])
    assert.match(runs.find((r) => r.status === 125)!.stderr, /the container name "only-one" is already in use/)
    assert.equal(store.ok(['ps', '-a', '-q']).stdout.trim().split('\n').length, 1)
    store.ok(['container', 'rm', 'only-one'])
  })
})

describe('store gc during runs', () => {
  const store = makeStore({ after })
  before(() => {
    if (runnable()) store.pull(['minbase', 'layered'])
  })

  it('store gc during runs removes nothing in use; what no container or image uses goes', async (t) => {
    if (!canRun(t)) return
    store.ok(['run', '-d', '-q', '--name', 'keep', LAYERED, 'sh', '-c', 'exec sleep 60'])
    const used = unpackedLayers(store.dir)
    assert.equal(used.length, 3)
    // The image's name goes (--force: a container uses it); the container keeps its layers.
    store.ok(['rmi', '--force', LAYERED])
    const during = await Promise.all([
      runAsync(['run', '--store', store.dir, '--rm', '-q', MINBASE, 'sh', '-c', 'sleep 0.5; cat /etc/debian_version']),
      runAsync(['store', 'gc', '--store', store.dir]),
      runAsync(['store', 'gc', '--store', store.dir]),
    ])
    for (const r of during) assert.equal(r.status, 0, r.stderr)
    assert.match(during[0]!.stdout, /^12\./)
    for (const l of used) assert.ok(unpackedLayers(store.dir).includes(l), `layer ${l} of a running container kept`)
    assert.match(store.ok(['ps']).stdout, /running\s+keep/)
    store.ok(['stop', '-t', '0', 'keep'])
    store.ok(['container', 'rm', 'keep'])
    store.ok(['store', 'gc'])
    const left = unpackedLayers(store.dir)
    assert.equal(left.length, 1, "only minbase's layer remains")
    assert.ok(used.includes(left[0]!), "minbase's layer is the layered image's bottom one")
  })
})

describe('a --rm container after a crash', () => {
  it('crash safety: a --rm container directory whose record a crash lost (not fsynced) is removed by gc and keeps no layer', (t) => {
    if (!canRun(t)) return
    const store = makeStore(t, ['minbase', 'layered'])
    store.ok(['run', '--rm', '-q', LAYERED, 'true'])
    store.ok(['rmi', LAYERED])
    // What a power loss can leave of a `run --rm` whose record was written without fsync: the
    // container's directory (config.json, upper, work, rootfs) and no container.json.
    const id = 'ab'.repeat(32)
    const dir = path.join(store.dir, 'containers', id)
    for (const d of ['rootfs', 'upper', 'work']) mkdirSync(path.join(dir, d), { recursive: true })
    writeFileSync(path.join(dir, 'config.json'), '{}')
    assert.equal(store.ok(['ps', '-a', '-q']).stdout, '', 'a directory without a record is no container')
    store.ok(['store', 'gc'])
    assert.equal(existsSync(dir), false, 'gc removed the directory')
    assert.equal(unpackedLayers(store.dir).length, 1, "only minbase's layer is kept: the lost record named none")
    store.ok(['run', '--rm', '-q', MINBASE, 'true'])
  })
})

describe('the copy fallback', () => {
  it('merging the unpacked layers by copy equals applying the layers in one root', async (t) => {
    if (!canRun(t)) return
    const dir = tempDir(t, { prefix: 'lading-run-copy-' })
    const s = await LocalStore.open(path.join(dir, 'store'))
    const { pullImage } = await import('../../src/run/images.js')
    await pullImage(s, `oci:${FIXTURE_LAYOUT}:layered`)
    const img = await s.resolve((await s.findImage(LAYERED))!.manifest)
    const { dirs } = await ensureLayers(s, img)
    const merged = path.join(dir, 'merged')
    const flat = path.join(dir, 'flat')
    mkdirSync(merged)
    mkdirSync(flat)
    await copyLayers(dirs, merged)
    await applyImageLayers(img, flat)
    const view = (root: string): string[] =>
      [...scanTree(root).entries]
        .filter(([rel]) => rel !== '')
        .map(
          ([rel, e]) =>
            `${rel} ${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid} ${e.type === 'file' ? e.size : ''} ${e.link ?? ''} ${Object.keys(e.xattrs ?? {})
              .sort()
              .join(',')}`,
        )
    assert.deepEqual(view(merged), view(flat))
  })
})
