import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isLadingError } from '../../src/errors.js'
import { parseDockerfile } from '../../src/build/dockerfile/parse.js'
import { expandWord, splitWords, WordError } from '../../src/build/dockerfile/words.js'

const env = (o: Record<string, string>) => (n: string): string | undefined => o[n]

function syntaxError(text: string, where: RegExp): void {
  assert.throws(() => parseDockerfile(text, 'Dockerfile'), (e: unknown) => {
    assert.ok(isLadingError(e, 'INVALID_DOCKERFILE'), String(e))
    assert.match(e.message, where)
    assert.doesNotMatch(e.message, /\n/)
    return true
  })
}

test('instructions: case-insensitive names, comments, blank lines, line and column', () => {
  const df = parseDockerfile('# a comment\n\nfrom scratch\n  # indented comment\n   Run echo hi\n', 'Df')
  assert.deepEqual(df.instructions.map((i) => [i.keyword, i.args, i.line, i.column]), [['FROM', 'scratch', 3, 1], ['RUN', 'echo hi', 5, 4]])
})

test('line continuations join lines and skip comment and blank lines inside', () => {
  const df = parseDockerfile('FROM scratch\nRUN echo a \\\n  # note\n\n  && echo b \\  \n  c\n')
  assert.equal(df.instructions[1]!.args, 'echo a   && echo b   c')
})

test('a continuation at the end of the file ends the instruction', () => {
  const df = parseDockerfile('FROM scratch\nRUN echo a \\')
  assert.equal(df.instructions[1]!.args, 'echo a')
})

test('parser directives: escape and syntax at the top only; unknown directives end them', () => {
  const df = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nRUN echo a `\n b\n')
  assert.equal(df.escape, '`')
  assert.equal(df.syntax, 'docker/dockerfile:1')
  assert.equal(df.instructions[1]!.args, 'echo a  b')
  // After a plain comment, `# escape=` is a comment too.
  const late = parseDockerfile('# hello\n# escape=`\nFROM scratch\n')
  assert.equal(late.escape, '\\')
  const unknown = parseDockerfile('# foo=bar\n# escape=`\nFROM scratch\n')
  assert.equal(unknown.escape, '\\')
  const upper = parseDockerfile('# ESCAPE=`\nFROM scratch\n')
  assert.equal(upper.escape, '`')
})

test('directive errors: twice, bad escape character', () => {
  syntaxError('# escape=`\n# escape=\\\nFROM scratch\n', /^Dockerfile:2:1: .*twice/)
  syntaxError('# escape=x\nFROM scratch\n', /^Dockerfile:1:1: invalid escape character/)
})

test('exec form is a JSON array of strings; anything else is the shell form', () => {
  const df = parseDockerfile('FROM scratch\nCMD ["bash", "-c", "echo $HOME"]\nCMD [bash]\nENTRYPOINT ["a", 1]\nRUN [ "x" ]\n')
  assert.deepEqual(df.instructions[1]!.exec, ['bash', '-c', 'echo $HOME'])
  assert.equal(df.instructions[2]!.exec, undefined)
  assert.equal(df.instructions[2]!.args, '[bash]')
  assert.equal(df.instructions[3]!.exec, undefined)
  assert.deepEqual(df.instructions[4]!.exec, ['x'])
})

test('flags: values, booleans, unknown flags refused with the position', () => {
  const df = parseDockerfile('FROM --platform=linux/arm64 scratch AS b\nCOPY --from=b --chown=1:2 --link a /b\nRUN --mount=type=cache,target=/c --network=none make\n')
  assert.deepEqual(df.instructions[0]!.flags, [{ name: 'platform', value: 'linux/arm64' }])
  assert.equal(df.instructions[0]!.args, 'scratch AS b')
  assert.deepEqual(df.instructions[1]!.flags, [{ name: 'from', value: 'b' }, { name: 'chown', value: '1:2' }, { name: 'link' }])
  assert.equal(df.instructions[1]!.args, 'a /b')
  assert.deepEqual(df.instructions[2]!.flags.map((f) => f.name), ['mount', 'network'])
  syntaxError('FROM scratch\n  COPY --frm=x a b\n', /^Dockerfile:2:3: COPY: unknown flag --frm$/)
  syntaxError('FROM scratch\nENV --x=1 A=b\n', /^Dockerfile:2:1: ENV: unknown flag --x/)
})

test('unknown instructions and missing arguments are one-line errors with file:line:column', () => {
  syntaxError('FROM scratch\nFOO bar\n', /^Dockerfile:2:1: unknown instruction "FOO"$/)
  syntaxError('FROM scratch\nCOPY onlyone\n', /^Dockerfile:2:1: COPY requires at least two/)
  syntaxError('FROM scratch\nSHELL /bin/bash -c\n', /^Dockerfile:2:1: SHELL requires the arguments to be in JSON form/)
  syntaxError('FROM scratch\nWORKDIR\n', /^Dockerfile:2:1: WORKDIR requires at least one argument/)
  syntaxError('FROM scratch\nONBUILD ONBUILD RUN x\n', /ONBUILD cannot be nested/)
  syntaxError('FROM scratch\nONBUILD FROM x\n', /FROM is not allowed as an ONBUILD trigger/)
})

test('ONBUILD keeps its trigger as a parsed instruction', () => {
  const df = parseDockerfile('FROM scratch\nONBUILD COPY --chown=1 a /b\n')
  const t = df.instructions[1]!.trigger!
  assert.equal(t.keyword, 'COPY')
  assert.deepEqual(t.flags, [{ name: 'chown', value: '1' }])
})

test('heredocs: bodies, <<- strips tabs, quoted delimiters turn expansion off, several per instruction', () => {
  const df = parseDockerfile([
    'FROM scratch',
    'RUN <<EOF',
    'echo $A',
    '  indented',
    'EOF',
    'RUN <<-"END" bash',
    '\techo tab',
    '\tEND',
    'COPY <<one <<\'two\' /dst/',
    'first',
    'one',
    'second $X',
    'two',
    'CMD ["x"]',
  ].join('\n'))
  const [, run1, run2, copy, cmd] = df.instructions
  assert.deepEqual(run1!.heredocs, [{ name: 'EOF', body: 'echo $A\n  indented\n', expand: true }])
  assert.deepEqual(run2!.heredocs, [{ name: 'END', body: 'echo tab\n', expand: false }])
  assert.deepEqual(copy!.heredocs.map((h) => [h.name, h.body, h.expand]), [['one', 'first\n', true], ['two', 'second $X\n', false]])
  assert.equal(cmd!.keyword, 'CMD')
  syntaxError('FROM scratch\nRUN <<EOF\necho\n', /^Dockerfile:2:1: here-document <<EOF is not terminated/)
})

test('a heredoc marker in quotes or in CMD is not a heredoc', () => {
  const df = parseDockerfile('FROM scratch\nRUN echo "<<EOF"\nCMD cat <<EOF\n')
  assert.deepEqual(df.instructions[1]!.heredocs, [])
  assert.deepEqual(df.instructions[2]!.heredocs, [])
})

test('CRLF line ends and a byte-order mark are accepted', () => {
  const df = parseDockerfile('\uFEFFFROM scratch\r\nRUN a \\\r\n b\r\n')
  assert.equal(df.instructions[1]!.args, 'a  b')
})

test('splitWords keeps quotes and escapes, splits at unquoted blanks', () => {
  assert.deepEqual(splitWords('a "b c" d\\ e \'f g\'').map((w) => w.text), ['a', '"b c"', 'd\\ e', "'f g'"])
  assert.deepEqual(splitWords('x="a b" y=\\"c').map((w) => w.text), ['x="a b"', 'y=\\"c'])
  assert.deepEqual(splitWords('a`  b', '`').map((w) => w.text), ['a` ', 'b'])
})

test('expandWord: $VAR, ${VAR}, defaults and alternatives as Docker does', () => {
  const e = env({ A: 'x', EMPTY: '' })
  const cases: Array<[string, string]> = [
    ['$A', 'x'], ['${A}', 'x'], ['pre${A}post', 'prexpost'], ['$UNSET', ''], ['${UNSET:-d}', 'd'],
    ['${EMPTY:-d}', 'd'], ['${EMPTY-d}', ''], ['${UNSET-d}', 'd'], ['${A:+alt}', 'alt'], ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'], ['${UNSET+alt}', ''], ['${UNSET:-${A}y}', 'xy'], ["'$A'", '$A'], ['"$A"', 'x'],
    ['"a\\"b"', 'a"b'], ['"a\\nb"', 'a\\nb'], ['\\$A', '$A'], ['a\\ b', 'a b'], ['$', '$'], ['a$', 'a$'], ['$1', '$1'],
    ['${UNSET:-a b}', 'a b'], ['"${UNSET:-"q"}"', 'q'],
  ]
  for (const [word, want] of cases) assert.equal(expandWord(word, e), want, word)
  assert.equal(expandWord('`$A', e, '`'), '$A')
  assert.equal(expandWord('\\$A', e, '`'), '\\x')
})

test('expandWord records the variables it read, and reports bad words', () => {
  const used = new Set<string>()
  expandWord('${A:-$B}$C', env({ A: '1' }), '\\', used)
  assert.deepEqual([...used].sort(), ['A', 'B', 'C'])
  assert.throws(() => expandWord('"abc', env({})), WordError)
  assert.throws(() => expandWord("'abc", env({})), WordError)
  assert.throws(() => expandWord('${A', env({})), WordError)
  assert.throws(() => expandWord('${}', env({})), WordError)
  assert.throws(() => expandWord('${A:?must be set}', env({})), /A: must be set/)
  assert.equal(expandWord('${A:?x}', env({ A: 'v' })), 'v')
})
