/** The progress printer: tty redraws in place, plain prints a short line per blob, json one object per line. */
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import { ProgressPrinter, chooseProgressMode } from '../../src/cli/progress.js'
import type { CopyEvent } from '../../src/copy/events.js'
import type { Digest } from '../../src/digest/digest.js'

const A = `sha256:${'a'.repeat(64)}` as Digest
const B = `sha256:${'b'.repeat(64)}` as Digest
const C = `sha256:${'c'.repeat(64)}` as Digest
const EVENTS: CopyEvent[] = [
  { type: 'blob-start', digest: A, size: 1000, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', action: 'copy' },
  { type: 'blob-exists', digest: B, size: 50 },
  { type: 'blob-progress', digest: A, bytes: 500, size: 1000 },
  { type: 'blob-done', digest: A, size: 1000, stored: { digest: C, size: 3000, mediaType: 'application/vnd.oci.image.layer.v1.tar' } },
  { type: 'manifest', digest: C, mediaType: 'application/vnd.oci.image.manifest.v1+json', tag: 'latest' },
]

function render(mode: 'tty' | 'plain' | 'json' | 'quiet'): string {
  const out = new PassThrough()
  let text = ''
  out.on('data', (c: Buffer) => {
    text += c.toString()
  })
  const p = new ProgressPrinter(mode, out)
  for (const e of EVENTS) p.onEvent(e)
  p.finish('summary line')
  return text
}

test('progress: tty mode draws a line per blob with state and redraws with ANSI cursor movement', () => {
  const s = render('tty')
  assert.match(s, /\x1b\[2K\r/)
  assert.match(s, /\x1b\[\d+A/, 'moves the cursor up to redraw')
  assert.match(s, /sha256:aaaaaaaaaaaa: done +1.00 kB \/ 1.00 kB .*\/s -> sha256:cccccccccccc/)
  assert.match(s, /sha256:bbbbbbbbbbbb: exists/)
  assert.match(s, /Wrote manifest sha256:cccccccccccc as latest/)
  assert.match(s, /summary line\n$/)
})

test('progress: plain mode prints one short line per blob event and no escapes', () => {
  const s = render('plain')
  assert.doesNotMatch(s, /\x1b/)
  assert.deepEqual(
    s
      .trim()
      .split('\n')
      .map((l) => l.replace(/ in [\d.]+s/, '')),
    [
      'Copying blob sha256:aaaaaaaaaaaa (1.00 kB)',
      'Blob sha256:bbbbbbbbbbbb exists, skipped',
      'Copied blob sha256:aaaaaaaaaaaa as sha256:cccccccccccc (3.00 kB)',
      'Wrote manifest sha256:cccccccccccc as latest',
      'summary line',
    ],
  )
})

test('progress: json mode is one parseable event per line; quiet prints nothing', () => {
  const lines = render('json').trim().split('\n')
  assert.equal(lines.length, EVENTS.length)
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { type: string }).type),
    EVENTS.map((e) => e.type),
  )
  assert.equal(render('quiet'), '')
})

test('progress: mode choice (quiet wins; json by flag; tty only on a terminal outside CI)', () => {
  const fakeTty = { isTTY: true } as NodeJS.WriteStream
  const pipe = { isTTY: false } as NodeJS.WriteStream
  assert.equal(chooseProgressMode({ quiet: true, progress: 'json' }, fakeTty), 'quiet')
  assert.equal(chooseProgressMode({ progress: 'json' }, fakeTty), 'json')
  assert.equal(chooseProgressMode({}, pipe), 'plain')
  const ci = process.env.CI
  process.env.CI = 'false'
  try {
    assert.equal(chooseProgressMode({}, fakeTty), process.env.TERM === 'dumb' ? 'plain' : 'tty')
  } finally {
    if (ci === undefined) delete process.env.CI
    else process.env.CI = ci
  }
})
