/**
 * The benchmark scenarios of issue 14 (`lading run`): time to a finished `/bin/true` in the Debian
 * minbase image, beside what users script today.
 *
 * - image in the store (its layer unpacked by an earlier run): `lading run --rm` against
 *   `runc run` of a ready bundle (the floor: target <= 1.3x) and against `umoci unpack` +
 *   `runc run` (target well under: <= 0.5x);
 * - first run (the image in the store, its layer not yet unpacked): against `umoci unpack` +
 *   `runc run` (target <= 0.5x).
 * umoci's config.json asks for a terminal (and runs bash): the peers' script turns it off and
 * runs /bin/true with sed, which costs a few ms of the peer's time.
 */
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { run } from './lib/measure.js'
import { discard } from './lib/discard.js'
import type { Env, Medium, Scenario } from './scenarios.js'

const IMAGE = 'localhost/layout:minbase'

/** Remove the store's unpacked layers (and anything a failed run left), keeping its images. */
function forgetLayers(store: string): void {
  for (const id of existsSync(path.join(store, 'containers'))
    ? spawnSync('ls', [path.join(store, 'containers')], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean)
    : []) {
    spawnSync('umount', ['-l', path.join(store, 'containers', id, 'rootfs')], { stdio: 'ignore' })
  }
  discard(path.join(store, 'layers'))
  discard(path.join(store, 'containers'))
}

export function runScenarios(env: Env, medium: Medium): Scenario[] {
  const W = medium.dir
  const L = (...args: string[]): string[] => [...env.lading, ...args]
  const store = path.join(W, 'run-store')
  const bundle = path.join(W, 'run-bundle')
  const peerBundle = path.join(W, 'run-peer-bundle')
  const runcRoot = path.join(W, 'run-runc')
  const ladingArgs = ['run', '--store', store, '--rm', '-q', IMAGE, '/bin/true']
  // umoci unpack's config.json asks for a terminal and runs the image's Cmd (bash).
  const fixConfig = (b: string): string => `sed -i -e 's/"terminal": true/"terminal": false/' -e 's|"/bin/bash"|"/bin/true"|' ${b}/config.json`
  const umociThenRunc = {
    label: 'umoci unpack + runc run',
    setup: () => discard(peerBundle),
    teardown: () => discard(peerBundle),
    argv: () => [
      'sh',
      '-c',
      `umoci unpack --image "$0" "$1" >/dev/null && ${fixConfig('"$1"')} && exec runc --root "$2" run --bundle "$1" bench-umoci`,
      `${env.fixtures.layout}:minbase`,
      peerBundle,
      runcRoot,
    ],
  }
  const prepareStore = (): void => {
    if (!existsSync(path.join(store, 'images'))) run(L('pull', '--store', store, '-q', `oci:${env.fixtures.layout}:minbase`))
  }
  const check = (): void => {
    const r = spawnSync(env.lading[0]!, [...env.lading.slice(1), 'run', '--store', store, '--rm', '-q', IMAGE, 'sh', '-c', 'exit 7'])
    if (r.status !== 7) throw new Error(`lading run of "exit 7" exited ${r.status}`)
  }
  return [
    {
      name: 'run /bin/true (image in the store)',
      medium,
      prepare: () => {
        prepareStore()
        run(L(...ladingArgs)) // unpacks the layer once
        discard(bundle)
        run(['umoci', 'unpack', '--image', `${env.fixtures.layout}:minbase`, bundle])
        run(['sh', '-c', fixConfig(JSON.stringify(bundle))])
      },
      cleanup: () => {
        forgetLayers(store)
        discard(bundle)
        discard(peerBundle)
      },
      check,
      lading: { label: 'lading run --rm', needs: ['run'], args: () => ladingArgs, argv: () => L(...ladingArgs) },
      comparisons: [
        {
          peer: { label: 'runc run (ready bundle)', argv: () => ['runc', '--root', runcRoot, 'run', '--bundle', bundle, 'bench-ready'] },
          target: { kind: 'ratio', max: 1.3 },
        },
        { peer: umociThenRunc, target: { kind: 'ratio', max: 0.5 } },
      ],
    },
    {
      name: 'run /bin/true (first run, layer not unpacked)',
      medium,
      prepare: prepareStore,
      cleanup: () => {
        forgetLayers(store)
        discard(peerBundle)
      },
      lading: {
        label: 'lading run --rm (unpacks)',
        needs: ['run'],
        setup: () => forgetLayers(store),
        args: () => ladingArgs,
        argv: () => L(...ladingArgs),
      },
      comparisons: [{ peer: umociThenRunc, target: { kind: 'ratio', max: 0.5 } }],
    },
  ]
}
