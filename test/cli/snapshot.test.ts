/**
 * bin/lading, the `lading` command: it starts Node from the start-up snapshot of the bundled CLI
 * (src/cli/snapshot-entry.ts) when that snapshot was built by the `node` it is about to run, and
 * from the plain modules otherwise. Both must behave the same; the snapshot is never used with
 * another Node; and NODE_EXTRA_CA_CERTS is moved aside for Node's start and put back for the
 * command (the TLS side of that is in test/transport/registry/tls.test.ts).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, promises as fsp } from 'node:fs'
import path from 'node:path'
import { tempDir } from '../fixtures/temp.js'
import { lading, ladingOk, repoRoot } from '../helpers/cli.js'

const blob = path.join(repoRoot, 'build/src/cli/lading.blob')
const noSnapshot = existsSync(blob) ? false : process.env.CI === 'true' ? false : 'no start-up snapshot built (npm run build makes one)'

/** Variables that are not set are absent (JSON drops undefined). */
interface Probe {
  execArgv: string[]
  atStart: Record<string, string | undefined>
  atExit: Record<string, string | undefined>
}

/**
 * Runs `lading args` with a preload that records how Node was started and the CA variables;
 * `nodeOptions` go in NODE_OPTIONS before the preload.
 */
async function probe(
  t: TestContext,
  args: string[],
  env: Record<string, string>,
  nodeOptions = '',
): Promise<{ status: number | null; stdout: string; stderr: string; probe: Probe }> {
  const dir = tempDir(t, { prefix: 'lading-probe-' })
  const out = path.join(dir, 'probe.json')
  const script = path.join(dir, 'probe.cjs')
  await fsp.writeFile(
    script,
    `
      const pick = () => ({ extra: process.env.NODE_EXTRA_CA_CERTS, deferred: process.env.LADING_DEFERRED_EXTRA_CA_CERTS })
      const atStart = pick()
      process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ execArgv: process.execArgv, atStart, atExit: pick() })))
    `,
  )
  const r = lading(args, { env: { ...env, NODE_OPTIONS: `${nodeOptions} -r ${script}`.trim() } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, probe: JSON.parse(await fsp.readFile(out, 'utf8')) as Probe }
}

test(
  'lading starts from the start-up snapshot made by this node, with NODE_EXTRA_CA_CERTS moved aside until the command runs',
  { skip: noSnapshot },
  async (t) => {
    const r = await probe(t, ['--version'], { NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt' })
    assert.equal(r.status, 0, r.stderr)
    assert.ok(r.probe.execArgv.includes('--snapshot-blob'), `execArgv ${JSON.stringify(r.probe.execArgv)}`)
    assert.deepEqual(r.probe.atStart, { deferred: '/etc/ssl/certs/ca-certificates.crt' }, 'Node started without NODE_EXTRA_CA_CERTS')
    assert.deepEqual(r.probe.atExit, { extra: '/etc/ssl/certs/ca-certificates.crt' }, 'the command put it back')
  },
)

test('LADING_SNAPSHOT=0 starts from the plain modules', async (t) => {
  const r = await probe(t, ['--version'], { LADING_SNAPSHOT: '0', NODE_EXTRA_CA_CERTS: '' })
  assert.equal(r.status, 0, r.stderr)
  assert.ok(!r.probe.execArgv.includes('--snapshot-blob'))
  assert.deepEqual(r.probe.atExit, { extra: '' }, 'an empty variable is left alone')
})

test('a snapshot made by another node is not used: a different `node` first on PATH starts from the plain modules', { skip: noSnapshot }, async (t) => {
  const dir = tempDir(t, { prefix: 'lading-othernode-' })
  await fsp.symlink(process.execPath, path.join(dir, 'node'))
  const r = await probe(t, ['--version'], { PATH: `${dir}:${process.env.PATH ?? ''}` })
  assert.equal(r.status, 0, r.stderr)
  assert.ok(!r.probe.execArgv.includes('--snapshot-blob'), `execArgv ${JSON.stringify(r.probe.execArgv)}`)
})

test('NODE_OPTIONS with a V8 flag (which Node refuses a snapshot under) starts from the plain modules and works', { skip: noSnapshot }, async (t) => {
  const r = await probe(t, ['--version'], {}, '--max-old-space-size=300')
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), '0.1.0')
  assert.ok(!r.probe.execArgv.includes('--snapshot-blob'), `execArgv ${JSON.stringify(r.probe.execArgv)}`)
})

test('the snapshot and the plain modules print the same help, results and errors', { skip: noSnapshot }, (t) => {
  const dir = tempDir(t, { prefix: 'lading-same-' })
  const layout = path.join(dir, 'layout')
  ladingOk(['init', '--layout', layout])
  ladingOk(['new', '--image', `${layout}:t`])
  const cases = [
    ['--help'],
    ['copy', '--help'],
    ['ls', '--layout', layout],
    ['stat', '--image', `${layout}:t`],
    ['ls', '--layout', path.join(dir, 'missing')],
    ['copy', 'nonsense:x', 'oci:y'],
    ['no-such-command'],
  ]
  for (const args of cases) {
    const fromSnapshot = lading(args)
    const plain = lading(args, { env: { LADING_SNAPSHOT: '0' } })
    assert.deepEqual(
      { status: fromSnapshot.status, stdout: fromSnapshot.stdout, stderr: fromSnapshot.stderr },
      { status: plain.status, stdout: plain.stdout, stderr: plain.stderr },
      `lading ${args.join(' ')}`,
    )
  }
})
