/**
 * The forward-only archive writer shared by oci-archive and docker-archive (to a file, or a pipe):
 * it is the layer tar writer under the hood, so archives are reproducible and a file that changes
 * while it is archived never yields a corrupt archive.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { isLadingError } from '../../src/errors.js'
import { TarIndex } from '../../src/transport/archive/tar-index.js'
import { writeArchive, type TarSink } from '../../src/transport/archive/tar-output.js'
import { tempDir } from '../fixtures/temp.js'

test('archive output: members in order, the first of a name wins, the same bytes on every write, GNU tar reads it', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-out-' })
  const blob = path.join(dir, 'blob')
  await fsp.writeFile(blob, Buffer.alloc(70_000, 0x5a))
  const fill = async (sink: TarSink): Promise<void> => {
    await sink.bytes('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'))
    await sink.dir('blobs/')
    await sink.file('blobs/one', blob, 70_000)
    await sink.bytes('blobs/one', Buffer.from('ignored: the name is taken'))
    await sink.symlink('layer.tar', 'blobs/one')
  }
  await writeArchive(path.join(dir, 'a.tar'), undefined, fill, 'a')
  await writeArchive(path.join(dir, 'b.tar'), undefined, fill, 'b')
  const a = await fsp.readFile(path.join(dir, 'a.tar'))
  assert.ok(a.equals(await fsp.readFile(path.join(dir, 'b.tar'))), 'reproducible: no clock, no user names')
  const idx = await TarIndex.open(path.join(dir, 'a.tar'))
  assert.deepEqual(idx.names(), ['oci-layout', 'blobs/one', 'layer.tar'])
  assert.equal((await idx.read('layer.tar', 100_000)).length, 70_000)
  const listed = spawnSync('tar', ['-tvf', path.join(dir, 'a.tar')], { encoding: 'utf8' })
  assert.equal(listed.status, 0, listed.stderr)
  assert.match(listed.stdout, /^drwxr-xr-x 0\/0 +0 1970-01-01 00:00 blobs\/$/m)
  assert.match(listed.stdout, /^lrwxrwxrwx 0\/0 +0 1970-01-01 00:00 layer\.tar -> blobs\/one$/m)
})

test('security: archive output of a file that grew since it was listed is CONFLICT and leaves no archive behind', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-archive-out-' })
  const blob = path.join(dir, 'blob')
  await fsp.writeFile(blob, Buffer.alloc(1000, 1))
  const target = path.join(dir, 'out.tar')
  await assert.rejects(
    writeArchive(
      target,
      undefined,
      async (sink) => {
        await sink.file('blob', blob, 1000)
        await fsp.appendFile(blob, 'more') // after the header promised 1000 bytes
      },
      'out',
    ),
    (e: unknown) => isLadingError(e, 'CONFLICT'),
  )
  assert.deepEqual((await fsp.readdir(dir)).sort(), ['blob'], 'neither the archive nor its temp file')
})
