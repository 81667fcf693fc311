/** atomicWriteFile, durable (fsynced) and not: the whole file or the old one, no temp left. */
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { atomicWriteFile } from '../../src/io/fs.js'

describe('atomicWriteFile', () => {
  for (const durable of [true, false]) {
    it(`durable: ${durable} writes the whole file with its mode, replaces the old one and leaves no temp file`, async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'lading-atomic-'))
      try {
        const f = path.join(dir, 'config.json')
        writeFileSync(f, 'old')
        await atomicWriteFile(f, '{"new":true}\n', 0o600, { durable })
        assert.equal(readFileSync(f, 'utf8'), '{"new":true}\n')
        assert.equal(statSync(f).mode & 0o777, 0o600)
        assert.deepEqual(readdirSync(dir), ['config.json'])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  }
})
