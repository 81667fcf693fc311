/**
 * What a copy does to its destination when it cannot finish, and to what is already there:
 * - an existing archive with content is never replaced (docker-archive as skopeo 1.9 refuses it;
 *   oci-archive too, though skopeo replaces it, so that a typo cannot lose a file); an empty
 *   file is written into, as skopeo does;
 * - a failed copy into an oci: or dir: directory it created removes that directory again; an
 *   existing layout or dir: image is left valid, as it was.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { digestHex } from '../../src/digest/digest.js'
import { Layout } from '../../src/store/layout.js'
import { lading, ladingOk, run } from '../helpers/cli.js'
import { requireTool } from '../helpers/tools.js'
import { initImage, type StoredImage } from '../fixtures/image.js'
import { tempDir } from '../fixtures/temp.js'

const tmp = tempDir({ after }, { prefix: 'lading-dest-lifecycle-' })
let good: string
let broken: string
let img: StoredImage

before(async () => {
  good = path.join(tmp, 'good')
  img = await initImage(good, {}, 't')
  // The same image, its second layer corrupted: the copy fails after the destination opened
  // and received the config and first layer.
  broken = path.join(tmp, 'broken')
  await fsp.cp(good, broken, { recursive: true })
  const layer = path.join(broken, 'blobs', 'sha256', digestHex(img.layers[1]!.digest))
  const bytes = await fsp.readFile(layer)
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1)
  await fsp.writeFile(layer, bytes)
})

const sha = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await fsp.readFile(file))
    .digest('hex')

test('docker-archive: and oci-archive: refuse to replace a file that has content; an empty file is written', async () => {
  for (const [transport, suffix] of [
    ['docker-archive', ':example/x:t'],
    ['oci-archive', ':t'],
  ] as const) {
    const file = path.join(tmp, `${transport}-existing.tar`)
    await fsp.writeFile(file, 'precious\n')
    const r = lading(['copy', '-q', `oci:${good}:t`, `${transport}:${file}${suffix}`])
    assert.equal(r.status, 1, r.stderr)
    assert.equal(r.stderr, `lading: ${transport}:${file}: the file already exists (9 bytes); refusing to replace it (remove it first)\n`)
    assert.equal(await fsp.readFile(file, 'utf8'), 'precious\n', 'the file is untouched')
    assert.deepEqual(
      (await fsp.readdir(tmp)).filter((n) => n.includes('.tmp-')),
      [],
      'no temp archive left',
    )

    const empty = path.join(tmp, `${transport}-empty.tar`)
    await fsp.writeFile(empty, '')
    ladingOk(['copy', '-q', `oci:${good}:t`, `${transport}:${empty}${suffix}`])
    ladingOk(['inspect', `${transport}:${empty}${suffix}`])
  }
})

test('skopeo refuses an existing docker-archive too, and writes into an empty one (the semantics Lading matches)', (t) => {
  if (!requireTool(t, 'skopeo')) return
  const file = path.join(tmp, 'skopeo-existing.tar')
  return (async () => {
    await fsp.writeFile(file, 'precious\n')
    const r = run('skopeo', ['copy', '-q', `oci:${good}:t`, `docker-archive:${file}:example/x:t`])
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /doesn't support modifying existing images/)
    assert.equal(await fsp.readFile(file, 'utf8'), 'precious\n')
    const empty = path.join(tmp, 'skopeo-empty.tar')
    await fsp.writeFile(empty, '')
    assert.equal(run('skopeo', ['copy', '-q', `oci:${good}:t`, `docker-archive:${empty}:example/x:t`]).status, 0)
  })()
})

test('an archive that appears while the copy runs is not replaced either', async () => {
  // Lading checks at open and publishes with link(2), which never replaces a name: a file
  // created in between (here: after the destination opened, through the library) stays.
  const { openDestination, openSource } = await import('../../src/transport/open.js')
  const { copyImage } = await import('../../src/copy/copy.js')
  const { parseReference } = await import('../../src/transport/reference.js')
  for (const [transport, suffix] of [
    ['docker-archive', ':example/x:t'],
    ['oci-archive', ':t'],
  ] as const) {
    const file = path.join(tmp, `${transport}-late.tar`)
    const src = await openSource(parseReference(`oci:${good}:t`))
    const dest = await openDestination(parseReference(`${transport}:${file}${suffix}`))
    await fsp.writeFile(file, 'late\n')
    try {
      await assert.rejects(copyImage(src, dest, {}), /the file already exists \(5 bytes\)/)
    } finally {
      await Promise.all([src.close(), dest.close()])
    }
    assert.equal(await fsp.readFile(file, 'utf8'), 'late\n')
    assert.deepEqual(
      (await fsp.readdir(tmp)).filter((n) => n.includes('.tmp-')),
      [],
    )
  }
})

test('a failed copy into a new oci: or dir: directory removes it, parents it made included', async () => {
  for (const transport of ['oci', 'dir'] as const) {
    const parent = path.join(tmp, `new-${transport}`)
    const dst = path.join(parent, 'deeper', 'image')
    const ref = transport === 'oci' ? `oci:${dst}:t` : `dir:${dst}`
    const r = lading(['copy', '-q', `oci:${broken}:t`, ref])
    assert.equal(r.status, 1, r.stderr)
    assert.match(r.stderr, /^lading: .*digest/)
    await assert.rejects(fsp.lstat(parent), { code: 'ENOENT' }, `${transport}: the directories the copy made are gone`)
  }
})

test('a failed copy into an existing layout or dir: image leaves it valid, as it was', async () => {
  // Another image, so that the broken one's blobs are not there already (they would be skipped).
  const layoutDir = path.join(tmp, 'existing-oci')
  const other = await initImage(layoutDir, { seed: 'other' }, 't')
  const indexBefore = await sha(path.join(layoutDir, 'index.json'))
  assert.equal(lading(['copy', '-q', `oci:${broken}:t`, `oci:${layoutDir}:other`]).status, 1)
  assert.equal(await sha(path.join(layoutDir, 'index.json')), indexBefore, 'index.json unchanged')
  ladingOk(['validate', '--layout', layoutDir])
  assert.equal((await (await Layout.open(layoutDir)).resolveTag('t')).digest, other.manifest.digest)

  // An empty directory the user made is theirs: a failed copy leaves it (empty of images).
  const emptyDir = path.join(tmp, 'user-made')
  await fsp.mkdir(emptyDir)
  assert.equal(lading(['copy', '-q', `oci:${broken}:t`, `oci:${emptyDir}:t`]).status, 1)
  assert.ok((await fsp.stat(emptyDir)).isDirectory())

  const dirImage = path.join(tmp, 'existing-dir')
  ladingOk(['copy', '-q', `oci:${layoutDir}:t`, `dir:${dirImage}`])
  const manifestBefore = await sha(path.join(dirImage, 'manifest.json'))
  assert.equal(lading(['copy', '-q', `oci:${broken}:t`, `dir:${dirImage}`]).status, 1)
  assert.equal(await sha(path.join(dirImage, 'manifest.json')), manifestBefore)
  ladingOk(['inspect', `dir:${dirImage}`])
})
