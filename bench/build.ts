/**
 * Issue 13's benchmark: `lading build` beside `buildah bud --storage-driver vfs` (Debian's buildah)
 * on one Dockerfile: FROM the Debian fixture image + COPY of a 5,000-file directory + two RUN
 * steps + ENV and CMD, written to an oci: layout (buildah's time includes its push to the same
 * kind of layout, `-t oci:...`). The base image is an oci: layout on the medium under test.
 *  - cold: both start with an empty cache/storage each run (lading: a fresh --cache-dir; buildah:
 *    fresh --root/--runroot), so both import the base image, unpack it, run, commit and write;
 *  - warm: a rebuild with nothing changed, each with its cache from an untimed first build
 *    (buildah with --layers, its cached mode; lading's cache is always on).
 * Targets: cold <= 0.5x, warm <= 0.2x, lading's peak RSS < 200 MB.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { copyLayoutTags } from './lib/layout-copy.js'
import { run } from './lib/measure.js'
import { discard } from './lib/discard.js'
import type { Env, Medium, Scenario } from './scenarios.js'

const FILES = 5000

/** The build context: a Dockerfile and app/ with 5,000 small files in 50 directories. */
function makeContext(dir: string, layout: string): void {
  if (existsSync(path.join(dir, 'Dockerfile'))) return
  for (let d = 0; d < 50; d++) {
    const sub = path.join(dir, 'app', `d${String(d).padStart(2, '0')}`)
    mkdirSync(sub, { recursive: true })
    for (let f = 0; f < FILES / 50; f++) writeFileSync(path.join(sub, `f${f}.txt`), `file ${d}/${f}\n`.repeat(1 + ((d * 7 + f) % 40)))
  }
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    [
      `FROM oci:${layout}:minbase`,
      'COPY app /app',
      'RUN find /app -type f | wc -l > /app/count && sha256sum /app/d00/* > /app/sums',
      'RUN useradd -m -u 1500 appuser && mkdir -p /var/lib/app && chown appuser /var/lib/app',
      'ENV APP_HOME=/app MODE=production',
      'CMD ["/bin/bash", "-c", "cat /app/count"]',
      '',
    ].join('\n'),
  )
}

export function buildScenarios(env: Env, medium: Medium): Scenario[] {
  // buildah wants lower-case paths in oci: references, and medium.dir has upper-case letters in
  // its random part: a lower-case sibling on the same medium, removed by cleanup.
  const W = path.join(
    path.dirname(medium.dir),
    `lading-build-bench-${path
      .basename(medium.dir)
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '')}`,
  )
  const ctx = path.join(W, 'ctx')
  const L = (...args: string[]): string[] => [...env.lading, ...args]
  const buildah = (root: string, ...args: string[]): string[] => [
    'buildah',
    '--root',
    path.join(root, 'root'),
    '--runroot',
    path.join(root, 'runroot'),
    '--storage-driver',
    'vfs',
    'bud',
    '-q',
    ...args,
  ]
  const out = (name: string): string => path.join(W, 'out', name)
  // The base image on the medium under test, read by both tools from there.
  const base = path.join(W, 'base')
  const prepare = (): void => {
    if (!existsSync(base)) copyLayoutTags(env.fixtures.layout, base, ['minbase'])
    mkdirSync(ctx, { recursive: true })
    makeContext(ctx, base)
  }
  const check = (): void => {
    // A fast wrong answer must not pass: the image must carry the RUN output.
    const idx = path.join(out('lading'), 'index.json')
    if (!existsSync(idx)) throw new Error('lading build wrote no image')
    const r = run([...env.lading, 'ls', '--layout', out('lading')])
    if (!r.includes('bench')) throw new Error(`no tag bench in ${out('lading')}: ${r}`)
  }
  const list: Scenario[] = []
  list.push({
    name: 'build (cold cache)',
    medium,
    memMaxMiB: 200,
    prepare,
    check,
    cleanup: () => discard(W),
    lading: {
      label: 'lading build',
      needs: ['build'],
      setup: () => {
        discard(path.join(W, 'lcache'))
        discard(out('lading'))
      },
      teardown: () => discard(path.join(W, 'lcache')),
      args: () => ['build', '--cache-dir', path.join(W, 'lcache'), '-t', `oci:${out('lading')}:bench`, ctx],
      argv: () => L('build', '--progress', 'tty', '--cache-dir', path.join(W, 'lcache'), '-t', `oci:${out('lading')}:bench`, ctx),
    },
    comparisons: [
      {
        peer: {
          label: 'buildah bud (vfs)',
          setup: () => {
            discard(path.join(W, 'bstore'))
            discard(out('buildah'))
          },
          teardown: () => {
            discard(path.join(W, 'bstore'))
            discard(out('buildah'))
          },
          argv: () => buildah(path.join(W, 'bstore'), '-t', `oci:${out('buildah')}:bench`, ctx),
        },
        target: { kind: 'ratio', max: 0.5 },
      },
    ],
  })
  list.push({
    name: 'build rebuild (warm cache)',
    medium,
    memMaxMiB: 200,
    prepare: () => {
      prepare()
      // The untimed first builds that fill each tool's cache.
      run(L('build', '--progress', 'tty', '--cache-dir', path.join(W, 'wcache'), '-t', `oci:${out('lading')}:bench`, ctx))
      run(buildah(path.join(W, 'wstore'), '--layers', '-t', `oci:${out('buildah-warm')}:bench`, ctx))
    },
    check,
    cleanup: () => discard(W),
    lading: {
      label: 'lading build (cached)',
      needs: ['build'],
      args: () => ['build', '--cache-dir', path.join(W, 'wcache'), '-t', `oci:${out('lading')}:bench`, ctx],
      argv: () => L('build', '--progress', 'tty', '--cache-dir', path.join(W, 'wcache'), '-t', `oci:${out('lading')}:bench`, ctx),
    },
    comparisons: [
      {
        peer: {
          label: 'buildah bud --layers (cached)',
          argv: () => buildah(path.join(W, 'wstore'), '--layers', '-t', `oci:${out('buildah-warm')}:bench`, ctx),
        },
        target: { kind: 'ratio', max: 0.2 },
      },
    ],
  })
  return list
}
