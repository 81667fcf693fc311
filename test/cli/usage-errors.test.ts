/**
 * Issue 10 item 14: every usage error is one line `lading: <what>: <why>` on stderr, nothing on
 * stdout, exit status 2: commander's own errors (unknown option or command, missing argument or
 * option value, too many arguments, no command) as well as Lading's checks of option values.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lading } from '../helpers/cli.js'

const TABLE: Array<{ args: string[]; line: RegExp }> = [
  { args: [], line: /^lading: no command given \(run lading --help for usage\)$/ },
  { args: ['frobnicate'], line: /^lading: unknown command 'frobnicate'/ },
  { args: ['help', 'frobnicate'], line: /^lading: unknown command "frobnicate"/ },
  { args: ['--bogus'], line: /^lading: unknown option '--bogus'/ },
  { args: ['copy', '--bogus', 'oci:a', 'oci:b'], line: /^lading: copy: unknown option '--bogus' \(run lading copy --help for usage\)$/ },
  // commander's suggestion is a second line of its message: joined into the one line.
  { args: ['copy', '--formt', 'oci', 'oci:a', 'oci:b'], line: /^lading: copy: unknown option '--formt' \(Did you mean --format\?\)/ },
  { args: ['copy'], line: /^lading: copy: missing required argument 'source'/ },
  { args: ['copy', 'oci:a', 'oci:b', 'oci:c'], line: /^lading: copy: too many arguments/ },
  { args: ['copy', 'oci:a', 'oci:b', '--format'], line: /^lading: copy: option '-f, --format <oci\|v2s2>' argument missing/ },
  { args: ['copy', '--format', 'v1', 'oci:a', 'oci:b'], line: /^lading: --format: expected oci or v2s2, got "v1"$/ },
  { args: ['copy', '--concurrency', 'many', 'oci:a', 'oci:b'], line: /^lading: --concurrency: expected an integer/ },
  { args: ['copy', 'nowhere:x', 'oci:b'], line: /^lading: invalid image reference "nowhere:x": unknown transport/ },
  { args: ['ls'], line: /^lading: ls: required option '--layout <dir>' not specified/ },
  { args: ['ls', '--layout'], line: /^lading: ls: option '--layout <dir>' argument missing/ },
  { args: ['tag', 'v2'], line: /^lading: tag: required option '--image/ },
  { args: ['tag', '--image', 'L:bad tag', 'v2'], line: /^lading: --image "L:bad tag": invalid tag/ },
  { args: ['raw'], line: /^lading: raw: no command given \(run lading raw --help for usage\)$/ },
  { args: ['raw', 'frobnicate'], line: /^lading: raw: unknown command 'frobnicate'/ },
  { args: ['validate', '--type', 'nonsense', 'x.json'], line: /^lading: / },
]

test('regression: usage errors are one line `lading: <what>: <why>` with exit 2 (table)', () => {
  for (const { args, line } of TABLE) {
    const r = lading(args, { cwd: '/' })
    const where = `lading ${args.join(' ')}: ${JSON.stringify(r.stderr)}`
    assert.equal(r.status, 2, where)
    assert.equal(r.stdout, '', where)
    const lines = r.stderr.split('\n')
    assert.equal(lines.length, 2, `one line and its newline: ${where}`)
    assert.equal(lines[1], '', where)
    assert.match(lines[0]!, line, where)
  }
})

test('--help and --version still print to stdout and exit 0', () => {
  for (const args of [['--help'], ['copy', '--help'], ['--version'], ['help', 'copy']]) {
    const r = lading(args)
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`)
    assert.ok(r.stdout.length > 0)
    assert.equal(r.stderr, '')
  }
})
