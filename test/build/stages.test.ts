import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseDockerfile } from '../../src/build/dockerfile/parse.js'
import { argDeclarations, globalArgValues, planStages, platformArgs, stageOrder } from '../../src/build/stages.js'
import { isLadingError } from '../../src/errors.js'

const plat = platformArgs({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'amd64' })

function order(text: string, target?: string): string[] {
  const df = parseDockerfile(text)
  const plan = planStages(df)
  return stageOrder(plan, df.file, df.escape, () => undefined, target).map((s) => s.name ?? String(s.index))
}

test('stages: names, dependencies first, only what the target needs', () => {
  const text = 'FROM scratch AS a\nFROM scratch AS unused\nFROM a AS b\nCOPY --from=0 /x /x\nFROM scratch AS c\nCOPY --from=b /y /y\nRUN --mount=type=bind,from=a,target=/m true\n'
  assert.deepEqual(order(text), ['a', 'b', 'c'])
  assert.deepEqual(order(text, 'unused'), ['unused'])
  assert.throws(() => order(text, 'nope'), (e: unknown) => isLadingError(e, 'USAGE') && /no stage of that name/.test(e.message))
})

test('stages: errors with file:line:column', () => {
  const bad = (text: string, re: RegExp): void => {
    assert.throws(() => order(text), (e: unknown) => isLadingError(e, 'INVALID_DOCKERFILE') && re.test(e.message), text)
  }
  bad('RUN x\nFROM scratch\n', /^Dockerfile:1:1: RUN before the first FROM/)
  bad('ARG A=1\n', /no FROM instruction/)
  bad('FROM scratch AS x\nFROM scratch AS X\n', /^Dockerfile:2:1: stage name "x" is used twice/)
  bad('FROM scratch AS 1bad\n', /invalid stage name/)
  bad('FROM scratch AS\n', /FROM takes an image and optionally AS NAME/)
  bad('FROM scratch AS a\nCOPY --from=c /x /x\nFROM scratch AS b\nCOPY --from=a /x /x\nFROM scratch AS c\nCOPY --from=b /x /x\n', /circular dependency between stages: c -> b -> a -> c/)
})

test('ARG: global values from defaults, build args and platform ARGs; defaults expand earlier ones', () => {
  const df = parseDockerfile('ARG A=1\nARG B=${A}-x C\nARG D=${TARGETARCH}\nFROM scratch\n')
  const plan = planStages(df)
  const v = globalArgValues(plan, df.file, df.escape, new Map([['C', 'from-cli'], ['A', '9']]), plat)
  assert.equal(v.get('A'), '9')
  assert.equal(v.get('B'), '9-x')
  assert.equal(v.get('C'), 'from-cli')
  assert.equal(v.get('D'), 'arm64')
  assert.equal(v.get('TARGETPLATFORM'), 'linux/arm64/v8')
  assert.equal(v.get('BUILDPLATFORM'), 'linux/amd64')
  assert.equal(v.get('BUILDVARIANT'), '')
})

test('ARG: declarations with and without defaults; bad names refused', () => {
  const df = parseDockerfile('FROM scratch\nARG A B="x y" C=${A:-d}\nARG 1x\n')
  const [, ok, bad] = df.instructions
  assert.deepEqual(argDeclarations(ok!, df.file, df.escape, () => undefined), [{ name: 'A' }, { name: 'B', value: 'x y' }, { name: 'C', value: 'd' }])
  assert.throws(() => argDeclarations(bad!, df.file, df.escape, () => undefined), /^Error|ARG: invalid name "1x"/)
})
