/** atomicWriteFile, durable (fsynced) and not: the whole file or the old one, no temp left. */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { atomicWriteFile } from '../../src/io/fs.js'
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
