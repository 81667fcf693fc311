/**
 * The Dockerfile's syntax (the Dockerfile reference: §Format, §Parser directives, §Here-Documents,
 * §Shell and exec form), as BuildKit's parser reads it, into instructions whose arguments are
 * still unexpanded: variables are substituted later, step by step, because ARG and ENV change them
 * (see words.ts). What is checked here is syntax only; a syntax error is one LadingError naming
 * FILE:LINE:COLUMN.
 *
 * Rules, as the reference states them:
 *  - parser directives (`# syntax=`, `# escape=`, `# check=`) only at the very top, before any
 *    comment, blank line or instruction; names are case-insensitive; each at most once;
 *  - a line whose first non-blank character is `#` is a comment, also inside a continued
 *    instruction; blank lines inside a continued instruction are skipped;
 *  - the escape character (default `\`, or `` ` ``) as the last non-blank character continues the
 *    instruction on the next line (the escape and newline are removed);
 *  - instruction names are case-insensitive; leading `--name[=value]` words are flags;
 *  - RUN, COPY and ADD may name here-documents (`<<EOF`, `<<-EOF` strips leading tabs, a quoted
 *    delimiter turns expansion off): their bodies follow the instruction line;
 *  - the exec form is a JSON array of strings; anything else is the shell form.
 */
import { LadingError } from '../../errors.js'
import { splitWords } from './words.js'

export interface Flag {
  name: string
  /** undefined for a bare `--name` (a boolean flag such as --link). Unexpanded. */
  value?: string
}

export interface Heredoc {
  /** The delimiter word. */
  name: string
  /** The body, each line ending in a newline. */
  body: string
  /** False when the delimiter was quoted: the body is taken literally. */
  expand: boolean
}

export interface Instruction {
  /** Upper-case instruction name. */
  keyword: string
  /** The arguments after the flags, continuation lines joined; unexpanded. */
  args: string
  flags: Flag[]
  /** Set for the exec (JSON) form: its strings, unexpanded. */
  exec?: string[]
  heredocs: Heredoc[]
  /** For ONBUILD: the trigger instruction. */
  trigger?: Instruction
  /** Where the instruction starts (1-based). */
  line: number
  column: number
  /** The instruction as written (continuations joined, heredoc bodies left out), for messages. */
  text: string
}

export interface Dockerfile {
  file: string
  escape: string
  syntax?: string
  instructions: Instruction[]
}

/** Flags each instruction accepts (the Dockerfile reference, and BuildKit's). */
const FLAGS: Record<string, readonly string[]> = {
  FROM: ['platform'],
  RUN: ['mount', 'network', 'security'],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'checksum', 'keep-git-dir', 'link', 'exclude'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
}

export const INSTRUCTIONS = [
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME',
  'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
] as const

/** Instructions whose shell form may carry here-documents. */
const HEREDOC_INSTRUCTIONS = new Set(['RUN', 'COPY', 'ADD'])

/** The error for a problem at FILE:LINE:COLUMN (one line, as the CLI prints it). */
export function dockerfileError(file: string, line: number, column: number, message: string): LadingError {
  return new LadingError('INVALID_DOCKERFILE', `${file}:${line}:${column}: ${message}`)
}

const DIRECTIVE = /^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$/
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check'])
/** `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` at the start of a word (what may follow is the shell's). */
const HEREDOC_MARK = /^<<(-?)(?:(["'])([^"'\s]+)\2|([A-Za-z0-9_][A-Za-z0-9_.-]*))/

/** Parse the text of a Dockerfile. `file` names it in error messages. */
export function parseDockerfile(source: string, file = 'Dockerfile'): Dockerfile {
  const text = source.startsWith('\uFEFF') ? source.slice(1) : source
  const lines = text.split(/\r?\n/)
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  const df: Dockerfile = { file, escape: '\\', instructions: [] }

  // Parser directives (§Parser directives): only at the top, ended by the first line that is not one.
  let i = 0
  const seen = new Set<string>()
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!.trim())
    if (!m || !lines[i]!.trimStart().startsWith('#')) break
    const name = m[1]!.toLowerCase()
    if (!KNOWN_DIRECTIVES.has(name)) break
    if (seen.has(name)) throw dockerfileError(file, i + 1, 1, `the parser directive "${name}" is given twice`)
    seen.add(name)
    const value = m[2]!
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') throw dockerfileError(file, i + 1, 1, `invalid escape character ${JSON.stringify(value)}: it must be \\ or \``)
      df.escape = value
    } else if (name === 'syntax') {
      df.syntax = value
    }
  }

  const esc = df.escape
  const continues = (line: string): boolean => line.trimEnd().endsWith(esc)
  while (i < lines.length) {
    const raw = lines[i]!
    const trimmed = raw.trimStart()
    if (trimmed === '' || trimmed.startsWith('#')) { i++; continue }
    const line = i + 1
    const column = raw.length - trimmed.length + 1
    // Join continuation lines; comment and blank lines in between are dropped (§Format).
    let logical = ''
    let cur = trimmed
    i++
    while (continues(cur)) {
      const t = cur.trimEnd()
      logical += t.slice(0, -esc.length)
      let next: string | undefined
      while (i < lines.length) {
        const n = lines[i]!
        i++
        const nt = n.trimStart()
        if (nt === '' || nt.startsWith('#')) continue
        next = n
        break
      }
      if (next === undefined) { cur = ''; break }
      cur = next
    }
    logical += cur
    const ins = parseInstruction(logical, file, line, column, esc)
    if (HEREDOC_INSTRUCTIONS.has(ins.keyword) && ins.exec === undefined) {
      for (const w of splitWords(ins.args, esc)) {
        const m = HEREDOC_MARK.exec(w.text)
        if (!m) continue
        const strip = m[1] === '-'
        const name = m[3] ?? m[4]!
        let body = ''
        let closed = false
        while (i < lines.length) {
          const l = strip ? lines[i]!.replace(/^\t+/, '') : lines[i]!
          i++
          if (l === name) { closed = true; break }
          body += l + '\n'
        }
        if (!closed) throw dockerfileError(file, line, column, `here-document <<${name} is not terminated (no line "${name}" follows)`)
        ins.heredocs.push({ name, body, expand: m[2] === undefined })
      }
    }
    df.instructions.push(ins)
  }
  return df
}

/** One logical instruction line (continuations already joined). */
export function parseInstruction(logical: string, file: string, line: number, column: number, esc: string, nested = false): Instruction {
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(logical.trim())
  if (!m) throw dockerfileError(file, line, column, 'empty instruction')
  const keyword = m[1]!.toUpperCase()
  if (!(INSTRUCTIONS as readonly string[]).includes(keyword)) {
    throw dockerfileError(file, line, column, `unknown instruction ${JSON.stringify(m[1])}`)
  }
  let rest = (m[2] ?? '').trim()
  const ins: Instruction = { keyword, args: '', flags: [], heredocs: [], line, column, text: logical.trim() }

  if (keyword === 'ONBUILD') {
    if (nested) throw dockerfileError(file, line, column, 'ONBUILD cannot be nested')
    if (rest === '') throw dockerfileError(file, line, column, 'ONBUILD needs an instruction')
    const trigger = parseInstruction(rest, file, line, column, esc, true)
    if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(trigger.keyword)) {
      throw dockerfileError(file, line, column, `${trigger.keyword} is not allowed as an ONBUILD trigger`)
    }
    ins.trigger = trigger
    ins.args = rest
    return ins
  }

  // Leading --flags (BuildKit's BFlags): `--name=value` or `--name`.
  const allowed = FLAGS[keyword] ?? []
  while (rest.startsWith('--')) {
    const word = splitWords(rest, esc)[0]!.text
    const fm = /^--([A-Za-z][A-Za-z0-9-]*)(?:=([\s\S]*))?$/.exec(word)
    if (!fm) throw dockerfileError(file, line, column, `${keyword}: malformed flag ${JSON.stringify(word)}`)
    const name = fm[1]!.toLowerCase()
    if (!allowed.includes(name)) throw dockerfileError(file, line, column, `${keyword}: unknown flag --${name}`)
    ins.flags.push(fm[2] === undefined ? { name } : { name, value: fm[2] })
    rest = rest.slice(word.length).trimStart()
  }
  ins.args = rest

  if (rest.startsWith('[')) {
    const exec = parseJsonArray(rest)
    if (exec) ins.exec = exec
  }
  checkArity(ins, file)
  return ins
}

/** The exec form: a JSON array of strings, or undefined (then it is the shell form, as in Docker). */
function parseJsonArray(s: string): string[] | undefined {
  let v: unknown
  try { v = JSON.parse(s) } catch { return undefined }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return undefined
  return v as string[]
}

/** Argument counts Docker refuses at parse time. */
function checkArity(ins: Instruction, file: string): void {
  const fail = (why: string): never => { throw dockerfileError(file, ins.line, ins.column, `${ins.keyword} ${why}`) }
  const empty = ins.args === '' && ins.heredocs.length === 0
  switch (ins.keyword) {
    case 'FROM': case 'WORKDIR': case 'USER': case 'STOPSIGNAL': case 'MAINTAINER': case 'EXPOSE': case 'VOLUME': case 'ARG': case 'ENV': case 'LABEL':
      if (empty) fail('requires at least one argument')
      break
    case 'COPY': case 'ADD':
      // Heredoc forms (`COPY <<EOF /x`) are counted once the bodies are read; a bare word count suffices here.
      if (ins.exec ? ins.exec.length < 2 : splitWords(ins.args).length < 2) fail('requires at least two arguments: source(s) and destination')
      break
    case 'SHELL':
      if (!ins.exec || ins.exec.length === 0) fail('requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]')
      break
    case 'RUN':
      if (empty) fail('requires a command')
      break
  }
}
