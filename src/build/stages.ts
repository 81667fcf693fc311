/**
 * From parsed instructions to build stages (the Dockerfile reference §FROM, §ARG, §Understand how
 * ARG and FROM interact, §Predefined ARGs, §Automatic platform ARGs in the global scope):
 *  - ARGs before the first FROM are the global scope, usable in FROM lines; inside a stage an
 *    `ARG NAME` without a value takes the global value;
 *  - the platform ARGs (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, BUILDPLATFORM, BUILDOS,
 *    BUILDARCH, BUILDVARIANT) are defined in the global scope; a stage sees them after an ARG
 *    naming them;
 *  - the proxy ARGs (HTTP_PROXY, ... in both cases) need no ARG: given with --build-arg they are in
 *    every RUN's environment, and not in the history unless declared;
 *  - stages are named `AS name` (case-insensitive) or by index; FROM, COPY --from and
 *    RUN --mount from= may name another stage; a cycle among them is an error.
 */
import { LadingError } from '../errors.js'
import { formatPlatform } from '../spec/platform.js'
import type { Platform } from '../spec/types.js'
import { dockerfileError, type Dockerfile, type Instruction } from './dockerfile/parse.js'
import { expandWord, splitWords, WordError, type Lookup } from './dockerfile/words.js'

export const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']

export interface Stage {
  index: number
  /** Lower-case name, when given with AS. */
  name?: string
  from: Instruction
  /** The FROM image word, unexpanded. */
  base: string
  instructions: Instruction[]
}

export interface StagePlan {
  stages: Stage[]
  /** ARG instructions before the first FROM. */
  globalArgs: Instruction[]
}

const STAGE_NAME = /^[a-z][a-z0-9_.-]*$/

export function planStages(df: Dockerfile): StagePlan {
  const plan: StagePlan = { stages: [], globalArgs: [] }
  let cur: Stage | undefined
  for (const ins of df.instructions) {
    if (ins.keyword === 'FROM') {
      const words = splitWords(ins.args, df.escape).map((w) => w.text)
      if (words.length !== 1 && !(words.length === 3 && words[1]!.toLowerCase() === 'as')) {
        throw dockerfileError(df.file, ins.line, ins.column, 'FROM takes an image and optionally AS NAME')
      }
      cur = { index: plan.stages.length, from: ins, base: words[0]!, instructions: [] }
      if (words.length === 3) {
        const name = words[2]!.toLowerCase()
        if (!STAGE_NAME.test(name)) throw dockerfileError(df.file, ins.line, ins.column, `invalid stage name ${JSON.stringify(words[2])}`)
        if (plan.stages.some((s) => s.name === name)) throw dockerfileError(df.file, ins.line, ins.column, `stage name ${JSON.stringify(name)} is used twice`)
        cur.name = name
      }
      plan.stages.push(cur)
    } else if (!cur) {
      if (ins.keyword !== 'ARG') throw dockerfileError(df.file, ins.line, ins.column, `${ins.keyword} before the first FROM (only ARG may come before it)`)
      plan.globalArgs.push(ins)
    } else {
      cur.instructions.push(ins)
    }
  }
  if (plan.stages.length === 0) throw dockerfileError(df.file, 1, 1, 'no FROM instruction')
  return plan
}

/** The stage a name or index refers to, or undefined (then it names an image). */
export function findStage(plan: StagePlan, ref: string, before?: number): Stage | undefined {
  const lower = ref.toLowerCase()
  const byName = plan.stages.find((s) => s.name === lower)
  if (byName) return byName
  if (/^\d+$/.test(ref)) {
    const i = Number(ref)
    if (i < plan.stages.length && (before === undefined || i < before)) return plan.stages[i]
  }
  return undefined
}

/** The platform ARGs of the global scope (§Automatic platform ARGs in the global scope). */
export function platformArgs(target: Platform, build: Platform): Map<string, string> {
  return new Map([
    ['TARGETPLATFORM', formatPlatform(target)], ['TARGETOS', target.os], ['TARGETARCH', target.architecture], ['TARGETVARIANT', target.variant ?? ''],
    ['BUILDPLATFORM', formatPlatform(build)], ['BUILDOS', build.os], ['BUILDARCH', build.architecture], ['BUILDVARIANT', build.variant ?? ''],
  ])
}

/** Expand a word, turning a lexer error into a file:line:column error. */
export function expandAt(file: string, ins: Instruction, word: string, lookup: Lookup, escape: string, used?: Set<string>): string {
  try {
    return expandWord(word, lookup, escape, used)
  } catch (e) {
    if (e instanceof WordError) throw dockerfileError(file, ins.line, ins.column, `${ins.keyword}: ${e.message} in ${JSON.stringify(word)}`)
    throw e
  }
}

/**
 * The global (meta) ARG values: declared defaults, overridden by build args, on top of the
 * platform ARGs. Expansion in a default sees the values declared before it.
 */
export function globalArgValues(plan: StagePlan, file: string, escape: string, buildArgs: ReadonlyMap<string, string>, platform: Map<string, string>): Map<string, string> {
  const values = new Map(platform)
  for (const ins of plan.globalArgs) {
    for (const { name, value } of argDeclarations(ins, file, escape, (n) => values.get(n))) {
      const v = buildArgs.get(name) ?? value
      if (v !== undefined) values.set(name, v)
    }
  }
  return values
}

/** The `NAME[=default]` pairs of an ARG instruction, defaults expanded. */
export function argDeclarations(ins: Instruction, file: string, escape: string, lookup: Lookup): Array<{ name: string; value?: string }> {
  const out: Array<{ name: string; value?: string }> = []
  for (const w of splitWords(ins.args, escape)) {
    const eq = w.text.indexOf('=')
    const name = eq < 0 ? w.text : w.text.slice(0, eq)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw dockerfileError(file, ins.line, ins.column, `ARG: invalid name ${JSON.stringify(name)}`)
    if (eq < 0) out.push({ name })
    else out.push({ name, value: expandAt(file, ins, w.text.slice(eq + 1), lookup, escape) })
  }
  return out
}

/** The stages named by --from / from= / FROM in a stage (before expansion of variables other than globals). */
function dependencies(plan: StagePlan, stage: Stage, globals: Lookup, escape: string): Array<{ stage: Stage; ins: Instruction }> {
  const out: Array<{ stage: Stage; ins: Instruction }> = []
  const add = (ref: string | undefined, ins: Instruction, before?: number): void => {
    if (ref === undefined) return
    let r: string
    try { r = expandWord(ref, globals, escape) } catch { r = ref }
    const s = findStage(plan, r, before)
    if (s) out.push({ stage: s, ins })
  }
  add(stage.base, stage.from, stage.index)
  for (const ins of stage.instructions) {
    const i = ins.trigger ?? ins
    for (const f of i.flags) {
      if (f.name === 'from' && i.keyword === 'COPY') add(f.value, ins)
      if (f.name === 'mount' && f.value) {
        const m = /(?:^|,)from=([^,]+)/.exec(f.value)
        if (m) add(m[1], ins)
      }
    }
  }
  return out
}

/**
 * The stages to build for `target` (default the last), dependencies first. A cycle is an error
 * naming the instruction that closes it.
 */
export function stageOrder(plan: StagePlan, file: string, escape: string, globals: Lookup, target?: string): Stage[] {
  let last: Stage
  if (target !== undefined) {
    const t = plan.stages.find((s) => s.name === target.toLowerCase())
    if (!t) throw new LadingError('USAGE', `--target ${JSON.stringify(target)}: no stage of that name (stages: ${plan.stages.map((s) => s.name ?? String(s.index)).join(', ')})`)
    last = t
  } else {
    last = plan.stages[plan.stages.length - 1]!
  }
  const order: Stage[] = []
  const state = new Map<Stage, 'visiting' | 'done'>()
  const visit = (s: Stage, via: Instruction | undefined, chain: string[]): void => {
    const st = state.get(s)
    if (st === 'done') return
    const label = s.name ?? String(s.index)
    if (st === 'visiting') {
      const at = via ?? s.from
      throw dockerfileError(file, at.line, at.column, `circular dependency between stages: ${[...chain, label].join(' -> ')}`)
    }
    state.set(s, 'visiting')
    for (const d of dependencies(plan, s, globals, escape)) visit(d.stage, d.ins, [...chain, label])
    state.set(s, 'done')
    order.push(s)
  }
  visit(last, undefined, [])
  return order
}
