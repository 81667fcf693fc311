import assert from 'node:assert/strict'
import { test } from 'node:test'
import { IgnoreRules, globToRegExp } from '../../src/build/dockerignore.js'
import { cleanSourcePath } from '../../src/build/sources.js'
import { isLadingError } from '../../src/errors.js'

test('.dockerignore: *, ?, [..], ** and parents, as moby/patternmatcher matches them', () => {
  const r = new IgnoreRules(['# comment', '', '*.log', 'tmp?', 'build/', '**/cache', 'docs/**/*.md', '/abs.txt', './dot.txt', 'c[ab]t'])
  const yes = ['a.log', 'tmp1', 'build', 'build/x/y', 'cache', 'a/b/cache', 'a/cache/file', 'docs/a/b/c.md', 'docs/x.md', 'abs.txt', 'dot.txt', 'cat', 'cbt']
  const no = ['a/b.log', 'tmp12', 'builder', 'cachex', 'docs/a/b/c.txt', 'x/abs.txt', 'cct', 'Dockerfile']
  for (const p of yes) assert.equal(r.ignores(p), true, p)
  for (const p of no) assert.equal(r.ignores(p), false, p)
})

test('.dockerignore: ! exceptions, last match wins', () => {
  const r = new IgnoreRules(['*.md', '!README.md', 'README*.md', '!README-keep.md', 'secret/', '!secret/public'])
  assert.equal(r.ignores('a.md'), true)
  assert.equal(r.ignores('README.md'), true, 'a later pattern excludes it again')
  assert.equal(r.ignores('README-keep.md'), false)
  assert.equal(r.ignores('secret/key'), true)
  assert.equal(r.ignores('secret/public'), false)
  assert.equal(r.ignores('secret/public/x'), false)
  assert.equal(r.hasExceptions, true)
})

test('globToRegExp: * does not cross /, escapes are literal, bad classes are errors', () => {
  assert.equal(globToRegExp('*.txt', false).test('a.txt'), true)
  assert.equal(globToRegExp('*.txt', false).test('a/b.txt'), false)
  assert.equal(globToRegExp('a\\*b', false).test('a*b'), true)
  assert.equal(globToRegExp('a\\*b', false).test('axb'), false)
  assert.equal(globToRegExp('[!a]x', false).test('bx'), true)
  assert.equal(globToRegExp('[!a]x', false).test('ax'), false)
  assert.equal(globToRegExp('f.(x)+', false).test('f.(x)+'), true)
  assert.throws(() => globToRegExp('[abc', false), (e: unknown) => isLadingError(e, 'USAGE'))
})

test('cleanSourcePath: relative to the root, refusing paths that climb out', () => {
  assert.equal(cleanSourcePath('./a/../b/', 'the build context'), 'b')
  assert.equal(cleanSourcePath('/abs/x', 'the build context'), 'abs/x')
  assert.equal(cleanSourcePath('.', 'the build context'), '')
  assert.throws(() => cleanSourcePath('../x', 'the build context'), (e: unknown) => isLadingError(e, 'UNSAFE_PATH') && /outside the build context/.test(e.message))
  assert.throws(() => cleanSourcePath('a/../../x', 'the build context'), (e: unknown) => isLadingError(e, 'UNSAFE_PATH'))
})
