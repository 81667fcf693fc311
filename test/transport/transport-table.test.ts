/**
 * Transports are registered objects in one table (src/transport/open.ts): each entry's syntax is
 * the one src/transport/reference.ts parses, and its capabilities are the ones its destinations
 * report once opened.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TRANSPORTS, openDestination, transportOf } from '../../src/transport/open.js'
import { REFERENCE_SYNTAX, formatReference, parseReference } from '../../src/transport/reference.js'
import type { ReferenceSyntax, Transport } from '../../src/transport/types.js'
import { tempDir } from '../fixtures/temp.js'

test('transport table: one entry per transport name, with the reference syntax of reference.ts', () => {
  assert.deepEqual(Object.keys(TRANSPORTS).sort(), Object.keys(REFERENCE_SYNTAX).sort())
  for (const [name, t] of Object.entries(TRANSPORTS) as Array<[string, Transport]>) {
    assert.equal(t.name, name)
    assert.equal(t.parse, (REFERENCE_SYNTAX as Record<string, ReferenceSyntax>)[name]!.parse, `${name}: parse is the one in reference.ts`)
    assert.equal(t.format, (REFERENCE_SYNTAX as Record<string, ReferenceSyntax>)[name]!.format, `${name}: format is the one in reference.ts`)
  }
  for (const s of ['oci:/l:t', 'oci-archive:/a.tar', 'docker-archive:/a.tar:x:y', 'dir:/d', 'docker://r.io/a:t']) {
    const r = parseReference(s)
    const t = transportOf(r)
    assert.equal(t.name, r.transport)
    assert.deepEqual(t.parse(formatReference(r).slice(t.name.length + 1)), r, s)
  }
})

test('transport table: capabilities are known before opening and are what the opened destination reports', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-table-' })
  for (const s of [
    `oci:${dir}/oci:t`,
    `oci-archive:${dir}/a.tar:t`,
    `docker-archive:${dir}/d.tar:x:y`,
    `dir:${dir}/dir`,
    'docker://127.0.0.1:9/never/contacted:t',
  ]) {
    const r = parseReference(s)
    const dest = await openDestination(r, { tlsVerify: false })
    try {
      assert.equal(dest.capabilities, transportOf(r).capabilities, s)
    } finally {
      await dest.close()
    }
  }
})
