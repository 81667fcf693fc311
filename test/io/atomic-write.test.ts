/**
 * atomicWriteFile, durable (fsynced) and not: the whole file or the old one, no temp left; and
 * createNewFileStream, whose file exists before any byte flows.
 */
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, it } from 'node:test'
import { atomicWriteFile, createNewFileStream } from '../../src/io/fs.js'
import { tempDir } from '../fixtures/temp.js'

describe('atomicWriteFile', () => {
  for (const durable of [true, false]) {
    it(`durable: ${durable} writes the whole file with its mode, replaces the old one and leaves no temp file`, async (t) => {
      const dir = tempDir(t, { prefix: 'lading-atomic-' })
      const f = path.join(dir, 'config.json')
      writeFileSync(f, 'old')
      await atomicWriteFile(f, '{"new":true}\n', 0o600, { durable })
      assert.equal(readFileSync(f, 'utf8'), '{"new":true}\n')
      assert.equal(statSync(f).mode & 0o777, 0o600)
      assert.deepEqual(readdirSync(dir), ['config.json'])
    })
  }
})

describe('createNewFileStream', () => {
  it('the file exists when the call returns, so a pipeline failing at once leaves nothing after cleanup', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-newstream-' })
    for (let i = 0; i < 20; i++) {
      const f = path.join(dir, `.out.tmp-${i}`)
      const out = await createNewFileStream(f, { mode: 0o600, flush: true })
      // fs.createWriteStream would still be opening here; the cleanup below would run first.
      assert.equal(existsSync(f), true)
      assert.equal(statSync(f).mode & 0o777, 0o600)
      const failing = new Readable({
        read() {
          this.destroy(new Error('source failed'))
        },
      })
      await assert.rejects(pipeline(failing, out), /source failed/)
      rmSync(f, { force: true })
    }
    assert.deepEqual(readdirSync(dir), [], 'no file created after its cleanup')
  })

  it('refuses a path that exists (O_EXCL), never writing through it', async (t) => {
    const dir = tempDir(t, { prefix: 'lading-newstream-' })
    const f = path.join(dir, 'taken')
    writeFileSync(f, 'keep')
    await assert.rejects(createNewFileStream(f, { mode: 0o644 }), { code: 'EEXIST' })
    assert.equal(readFileSync(f, 'utf8'), 'keep')
  })
})
