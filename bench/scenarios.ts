/**
 * The benchmark scenarios of issues 2, 3 and 4: each runs the real `lading` CLI beside a peer tool on
 * the same input, on one medium (tmpfs or disk). Setup (clearing outputs, unpacking the bundle a
 * repack starts from, restarting an empty registry) is never timed; only the command is.
 */
import { spawnSync } from 'node:child_process'
import { closeSync, copyFileSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs'
import path from 'node:path'
import { run, sh, splitArgv } from './lib/measure.js'
import { discard } from './lib/discard.js'
import { copyLayoutTags, blobPath, layersOf } from './lib/layout-copy.js'
import { Registry } from './lib/registry.js'

export type Target =
  | { kind: 'ratio'; max: number; strict?: boolean } // median of per-pair ratios lading/peer
  | { kind: 'ms'; max: number } // lading's median wall time, absolute

export interface Side {
  label: string
  /** Untimed, before every timed run of this side. */
  setup?: () => void | Promise<void>
  /**
   * Untimed, right after every run (after the first lading run's check): removes big outputs at
   * once, so on disk their dirty pages are dropped instead of written back during a later run.
   */
  teardown?: () => void | Promise<void>
  /** The timed command; called after setup (a port or path may be fresh). */
  argv: () => string[]
  /** Lading commands this side needs (checked against `lading --help`). */
  needs?: string[]
}

export interface Comparison {
  peer: Side
  target?: Target
}

export interface Scenario {
  name: string
  medium: Medium
  lading: Side & { args: () => string[] }
  comparisons: Comparison[]
  /**
   * Run on tmpfs only: the work reads a few cached KiB (ls, stat), or the medium under test is the
   * registry's, the same for both clients (push). Keeps a full run inside its time budget.
   */
  shmOnly?: boolean
  /**
   * At least this many repetitions in a full run (not in --quick): a run of a few hundred ms
   * against a registry varies by several percent from one repetition to the next, and its ratio
   * is judged against 1.0x, so five pairs are too few to tell.
   */
  minReps?: number
  /** Lading's peak RSS must stay under this (MiB). */
  memMaxMiB?: number
  /** Untimed, once before the runs. */
  prepare?: () => void | Promise<void>
  /** Untimed, once after the runs (also after a failure). */
  cleanup?: () => void | Promise<void>
  /** Sanity check of lading's output after its first run: a fast wrong answer must not pass. */
  check?: () => void | Promise<void>
}

export interface Medium {
  name: 'shm' | 'disk'
  /** Work directory on this medium (created by the harness). */
  dir: string
}

export interface Fixtures {
  layout: string
  rootfsTar: string
}

export interface Env {
  /** argv prefix that runs the lading CLI: [bin/lading]. */
  lading: string[]
  fixtures: Fixtures
}

const UMOCI = 'umoci'
const SKOPEO = 'skopeo'

function countEntries(root: string): number {
  let n = 0
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      n++
      if (e.isDirectory()) walk(path.join(d, e.name))
    }
  }
  walk(root)
  return n
}

/** Layer sizes of the image `tag` in `layout` (the harness reads JSON itself; see layout-copy.ts). */
function layerSizes(layout: string, tag: string): number[] {
  return layersOf(layout, tag).map((d) => d.size)
}

function extractRootfs(tarball: string, into: string): void {
  mkdirSync(into, { recursive: true })
  run(['tar', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-xpf', tarball, '-C', into])
}

/** Ten changes a user would make in a container: six edits, two new files, two deletions. */
function changeTenFiles(rootfs: string): void {
  sh(`cd ${JSON.stringify(rootfs)}
    for f in etc/issue etc/passwd etc/group etc/shells etc/profile etc/bash.bashrc; do echo '# bench edit' >> "$f"; done
    echo 'new file' > etc/lading-bench-new-1
    head -c 200000 /dev/urandom > usr/local/lading-bench-new-2
    rm -f etc/motd usr/share/common-licenses/GPL-2`)
}

export function scenarios(env: Env, medium: Medium): Scenario[] {
  const W = medium.dir
  const L = (...args: string[]): string[] => [...env.lading, ...args]
  const src = env.fixtures.layout
  const minbase = path.join(W, 'layout-minbase') // only the minbase image: validate's "same blobs"
  const images = path.join(W, 'layout-images') // minbase, layered, minbase-zstd
  const out = (name: string): string => path.join(W, 'out', name)
  const list: Scenario[] = []

  const ensureLayouts = (): void => {
    if (!existsSync(minbase)) copyLayoutTags(src, minbase, ['minbase'])
    if (!existsSync(images)) copyLayoutTags(src, images, ['minbase', 'layered', 'minbase-zstd'])
  }

  // --- issue 2: validate is bound by hashing ---------------------------------------------------
  list.push({
    name: 'validate minbase layout',
    medium,
    prepare: ensureLayouts,
    lading: { label: 'lading validate', needs: ['validate'], args: () => ['validate', '--layout', minbase], argv: () => L('validate', '--layout', minbase) },
    check: () => {
      // A validate that does not hash would be fast and wrong: one flipped byte in the layer must fail it.
      const bad = path.join(W, 'layout-corrupt')
      discard(bad)
      copyLayoutTags(src, bad, ['minbase'])
      const [first] = layersOf(bad, 'minbase')
      if (!first) throw new Error('minbase has no layer to corrupt')
      const layer = blobPath(bad, first.digest)
      const fd = openSync(layer, 'r+')
      const at = Math.floor(fstatSync(fd).size / 2)
      const b = Buffer.alloc(1)
      readSync(fd, b, 0, 1, at)
      b.writeUInt8(b.readUInt8(0) ^ 0xff, 0)
      writeSync(fd, b, 0, 1, at)
      closeSync(fd)
      const [cmd, args] = splitArgv(env.lading)
      const r = spawnSync(cmd, [...args, 'validate', '--layout', bad], { encoding: 'utf8' })
      discard(bad)
      if (r.status !== 1) throw new Error(`lading validate of a layout with a flipped byte exited ${r.status}, expected 1`)
    },
    comparisons: [
      {
        peer: { label: 'sha256sum blobs', argv: () => ['sh', '-c', 'exec sha256sum "$0"/blobs/sha256/*', minbase] },
        target: { kind: 'ratio', max: 1.2 },
      },
    ],
  })

  // --- issue 2: ls and stat start and finish fast ------------------------------------------------
  for (const [cmd, args, peerArgs] of [
    ['ls', ['ls', '--layout', images], ['ls', '--layout', images]],
    ['stat', ['stat', '--image', `${images}:layered`], ['stat', '--image', `${images}:layered`]],
  ] as const) {
    list.push({
      name: `${cmd} (layered image)`,
      medium,
      shmOnly: true,
      prepare: ensureLayouts,
      lading: { label: `lading ${cmd}`, needs: [cmd], args: () => [...args], argv: () => L(...args) },
      comparisons: [
        { peer: { label: 'node -e 0', argv: () => [process.execPath, '-e', '0'] }, target: { kind: 'ms', max: 150 } },
        { peer: { label: `umoci ${cmd}`, argv: () => [UMOCI, ...peerArgs] } },
      ],
    })
  }

  // --- issue 3: unpack ---------------------------------------------------------------------------
  for (const tag of ['minbase', 'layered'] as const) {
    const layerFiles = (): string[] => layersOf(images, tag).map((d) => blobPath(images, d.digest))
    list.push({
      name: `unpack ${tag}`,
      medium,
      prepare: ensureLayouts,
      memMaxMiB: 150,
      lading: {
        label: 'lading unpack',
        needs: ['unpack'],
        setup: () => discard(out('lading')),
        teardown: () => discard(out('lading')),
        args: () => ['unpack', '--image', `${images}:${tag}`, out('lading')],
        argv: () => L('unpack', '--image', `${images}:${tag}`, out('lading')),
      },
      check: () => {
        const root = path.join(out('lading'), 'rootfs')
        if (!existsSync(path.join(out('lading'), 'config.json'))) throw new Error('no config.json in the bundle')
        const n = countEntries(root)
        if (n < 6000) throw new Error(`rootfs has only ${n} entries`)
      },
      comparisons: [
        {
          peer: {
            label: 'umoci unpack',
            setup: () => discard(out('umoci')),
            teardown: () => discard(out('umoci')),
            argv: () => [UMOCI, 'unpack', '--image', `${images}:${tag}`, out('umoci')],
          },
          target: { kind: 'ratio', max: 0.5 },
        },
        {
          peer: {
            label: 'tar -xzf (layers)',
            setup: () => {
              discard(out('tar'))
              mkdirSync(out('tar'), { recursive: true })
            },
            teardown: () => discard(out('tar')),
            // GNU tar knows no whiteouts: it skips the .wh. entries (empty files; umoci writes some
            // under a path that has just become a file) and must unlink a directory a file replaces.
            argv: () => [
              'sh',
              '-c',
              'd=$0; for l in "$@"; do tar --recursive-unlink --exclude=.wh.* -xzf "$l" -C "$d" || exit 1; done',
              out('tar'),
              ...layerFiles(),
            ],
          },
          target: { kind: 'ratio', max: 1.0 },
        },
      ],
    })
  }
  list.push({
    name: 'unpack minbase-zstd vs minbase (gzip)',
    medium,
    prepare: ensureLayouts,
    memMaxMiB: 150,
    lading: {
      label: 'lading unpack zstd',
      needs: ['unpack'],
      setup: () => discard(out('lading')),
      teardown: () => discard(out('lading')),
      args: () => ['unpack', '--image', `${images}:minbase-zstd`, out('lading')],
      argv: () => L('unpack', '--image', `${images}:minbase-zstd`, out('lading')),
    },
    comparisons: [
      {
        peer: {
          label: 'lading unpack gzip',
          needs: ['unpack'],
          setup: () => discard(out('lading-gzip')),
          teardown: () => discard(out('lading-gzip')),
          argv: () => L('unpack', '--image', `${images}:minbase`, out('lading-gzip')),
        },
        target: { kind: 'ratio', max: 1.0, strict: true },
      },
    ],
  })

  // --- issue 3: repack ---------------------------------------------------------------------------
  // Whole rootfs: an empty image (umoci new, for both tools), unpacked by the tool, the Debian rootfs
  // copied in, then the timed repack writes it as one gzip layer.
  const wholeSetup = (tool: 'lading' | 'umoci') => (): void => {
    const dir = out(`repack-${tool}`)
    discard(dir)
    run([UMOCI, 'init', '--layout', path.join(dir, 'layout')])
    run([UMOCI, 'new', '--image', `${path.join(dir, 'layout')}:img`])
    const unpack =
      tool === 'lading'
        ? L('unpack', '--image', `${path.join(dir, 'layout')}:img`, path.join(dir, 'bundle'))
        : [UMOCI, 'unpack', '--image', `${path.join(dir, 'layout')}:img`, path.join(dir, 'bundle')]
    run(unpack)
    extractRootfs(env.fixtures.rootfsTar, path.join(dir, 'bundle', 'rootfs'))
  }
  const repackArgs = (tool: 'lading' | 'umoci', tag: string): string[] => [
    'repack',
    '--image',
    `${path.join(out(`repack-${tool}`), 'layout')}:${tag}`,
    path.join(out(`repack-${tool}`), 'bundle'),
  ]
  list.push({
    name: 'repack whole rootfs (one gzip layer)',
    medium,
    memMaxMiB: 150,
    lading: {
      label: 'lading repack',
      needs: ['repack', 'unpack'],
      setup: wholeSetup('lading'),
      teardown: () => discard(out('repack-lading')),
      args: () => repackArgs('lading', 'img'),
      argv: () => L(...repackArgs('lading', 'img')),
    },
    check: () => {
      const sizes = layerSizes(path.join(out('repack-lading'), 'layout'), 'img')
      if (sizes.length !== 1 || (sizes[0] ?? 0) < 50e6)
        throw new Error(`lading repack wrote layers of ${sizes.join(', ')} bytes; expected one of the whole rootfs`)
    },
    comparisons: [
      {
        peer: {
          label: 'umoci repack',
          setup: wholeSetup('umoci'),
          teardown: () => discard(out('repack-umoci')),
          argv: () => [UMOCI, ...repackArgs('umoci', 'img')],
        },
        target: { kind: 'ratio', max: 0.7 },
      },
    ],
  })

  // Ten files changed in an unpacked minbase: each iteration starts from the same image (index.json
  // restored) and a freshly unpacked bundle.
  const tenSetup = (tool: 'lading' | 'umoci') => (): void => {
    const dir = out(`repack-${tool}`)
    const layout = path.join(dir, 'layout')
    if (!existsSync(path.join(dir, 'index.json.orig'))) {
      discard(dir)
      copyLayoutTags(src, layout, ['minbase'])
      copyFileSync(path.join(layout, 'index.json'), path.join(dir, 'index.json.orig'))
    }
    copyFileSync(path.join(dir, 'index.json.orig'), path.join(layout, 'index.json'))
    discard(path.join(dir, 'bundle'))
    run(
      tool === 'lading'
        ? L('unpack', '--image', `${layout}:minbase`, path.join(dir, 'bundle'))
        : [UMOCI, 'unpack', '--image', `${layout}:minbase`, path.join(dir, 'bundle')],
    )
    changeTenFiles(path.join(dir, 'bundle', 'rootfs'))
  }
  list.push({
    name: 'repack after changing 10 files',
    medium,
    memMaxMiB: 150,
    prepare: () => {
      discard(out('repack-lading'))
      discard(out('repack-umoci'))
    },
    lading: {
      label: 'lading repack',
      needs: ['repack', 'unpack'],
      setup: tenSetup('lading'),
      teardown: () => discard(path.join(out('repack-lading'), 'bundle')),
      args: () => repackArgs('lading', 'minbase'),
      argv: () => L(...repackArgs('lading', 'minbase')),
    },
    check: () => {
      const sizes = layerSizes(path.join(out('repack-lading'), 'layout'), 'minbase')
      const [, added = 0] = sizes
      if (sizes.length !== 2 || added > 1e6 || added < 150e3)
        throw new Error(`lading repack wrote layers of ${sizes.join(', ')} bytes; expected minbase plus one small layer with the 10 changes`)
    },
    comparisons: [
      {
        peer: {
          label: 'umoci repack',
          setup: tenSetup('umoci'),
          teardown: () => discard(path.join(out('repack-umoci'), 'bundle')),
          argv: () => [UMOCI, ...repackArgs('umoci', 'minbase')],
        },
        target: { kind: 'ratio', max: 0.5 },
      },
    ],
  })

  // --- issue 4: copy -----------------------------------------------------------------------------
  // skopeo remembers where it saw blobs (a BoltDB cache) and would try cross-repository mounts from
  // earlier runs; the push registry starts empty before every run, so neither tool can skip work.
  const skopeoCache = '/var/lib/containers/cache/blob-info-cache-v1.boltdb'
  const pushRegistry = new Registry(path.join(W, 'registry-push'))
  const pullRegistry = new Registry(path.join(W, 'registry-pull'))
  const pushSetup = async (): Promise<void> => {
    rmSync(skopeoCache, { force: true })
    await pushRegistry.start()
  }
  const pushRef = (): string => `docker://${pushRegistry.host}/bench/minbase:latest`
  list.push({
    name: 'copy push oci: -> docker:// (local registry)',
    medium,
    shmOnly: true,
    minReps: 15,
    memMaxMiB: 200,
    prepare: ensureLayouts,
    cleanup: () => pushRegistry.stop(),
    lading: {
      label: 'lading copy',
      needs: ['copy'],
      setup: pushSetup,
      args: () => ['copy', '--dest-tls-verify=false', `oci:${minbase}:minbase`, pushRef()],
      argv: () => L('copy', '--dest-tls-verify=false', `oci:${minbase}:minbase`, pushRef()),
    },
    check: async () => {
      const url = `http://${pushRegistry.host}/v2/bench/minbase/manifests/latest`
      const res = await fetch(url, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
      if (res.status !== 200) throw new Error(`the registry answers ${res.status} for ${url} after lading's push`)
    },
    comparisons: [
      {
        peer: { label: 'skopeo copy', setup: pushSetup, argv: () => [SKOPEO, 'copy', '--dest-tls-verify=false', `oci:${minbase}:minbase`, pushRef()] },
        target: { kind: 'ratio', max: 1.0 },
      },
    ],
  })
  const pullRef = (): string => `docker://${pullRegistry.host}/bench/minbase:latest`
  list.push({
    name: 'copy pull docker:// -> oci:',
    medium,
    minReps: 15,
    memMaxMiB: 200,
    prepare: async () => {
      ensureLayouts()
      await pullRegistry.start()
      rmSync(skopeoCache, { force: true })
      run([SKOPEO, 'copy', '--dest-tls-verify=false', `oci:${minbase}:minbase`, pullRef()])
    },
    cleanup: () => pullRegistry.stop(),
    lading: {
      label: 'lading copy',
      needs: ['copy'],
      setup: () => discard(out('pull-lading')),
      teardown: () => discard(out('pull-lading')),
      args: () => ['copy', '--src-tls-verify=false', pullRef(), `oci:${out('pull-lading')}:minbase`],
      argv: () => L('copy', '--src-tls-verify=false', pullRef(), `oci:${out('pull-lading')}:minbase`),
    },
    check: () => {
      if (!existsSync(path.join(out('pull-lading'), 'index.json'))) throw new Error('no index.json in the pulled layout')
    },
    comparisons: [
      {
        peer: {
          label: 'skopeo copy',
          setup: () => {
            discard(out('pull-skopeo'))
            rmSync(skopeoCache, { force: true })
          },
          teardown: () => discard(out('pull-skopeo')),
          argv: () => [SKOPEO, 'copy', '--src-tls-verify=false', pullRef(), `oci:${out('pull-skopeo')}:minbase`],
        },
        target: { kind: 'ratio', max: 1.0 },
      },
    ],
  })
  const archive = (tool: string): string => `docker-archive:${out(`${tool}.tar`)}:bench/minbase:latest`
  list.push({
    name: 'copy oci: -> docker-archive:',
    medium,
    memMaxMiB: 200,
    prepare: () => {
      ensureLayouts()
      mkdirSync(path.join(W, 'out'), { recursive: true })
    },
    lading: {
      label: 'lading copy',
      needs: ['copy'],
      setup: () => rmSync(out('lading.tar'), { force: true }),
      teardown: () => rmSync(out('lading.tar'), { force: true }),
      args: () => ['copy', `oci:${minbase}:minbase`, archive('lading')],
      argv: () => L('copy', `oci:${minbase}:minbase`, archive('lading')),
    },
    check: () => {
      const names = run(['tar', '-tf', out('lading.tar')]).split('\n')
      if (!names.includes('manifest.json')) throw new Error('the docker-archive has no manifest.json')
    },
    comparisons: [
      {
        peer: {
          label: 'skopeo copy',
          setup: () => rmSync(out('skopeo.tar'), { force: true }),
          teardown: () => rmSync(out('skopeo.tar'), { force: true }),
          argv: () => [SKOPEO, 'copy', `oci:${minbase}:minbase`, archive('skopeo')],
        },
        target: { kind: 'ratio', max: 1.0 },
      },
    ],
  })
  return list
}
