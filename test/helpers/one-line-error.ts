/** The shape every user-facing failure must have: a LadingError with this code, one line, saying `re`. */
import assert from 'node:assert/strict'
import { isLadingError } from '../../src/errors.js'

/** For assert.rejects/throws: true, or an assertion error saying what differs. */
export function oneLine(e: unknown, code: string, re: RegExp): boolean {
  assert.ok(isLadingError(e), String(e))
  assert.equal((e as { code: string }).code, code, (e as Error).message)
  assert.match((e as Error).message, re)
  assert.doesNotMatch((e as Error).message, /\n/)
  return true
}
