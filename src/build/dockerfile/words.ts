/**
 * The word rules of the Dockerfile reference (§Environment replacement, §Parser directives
 * "escape"), as BuildKit's shell lexer (frontend/dockerfile/shell/lex.go) applies them:
 *  - `splitWords` cuts an instruction's arguments at unquoted whitespace, keeping quotes and
 *    escapes in each word (they are removed by `expandWord`, which runs later, once the variables
 *    of the step are known);
 *  - `expandWord` removes quotes and escapes and substitutes `$VAR`, `${VAR}`, `${VAR:-word}`,
 *    `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`. Inside single
 *    quotes nothing is substituted; inside double quotes the escape character escapes only `"`,
 *    `$` and itself (else it stays); an unset variable is the empty string.
 * Written by hand: no npm shell-word package follows Docker's rules (configurable escape
 * character, no globbing, no command substitution, `${VAR:+x}` but no `$(...)`).
 */

/** A word could not be expanded (an unterminated quote or brace, `${VAR:?}`); `offset` is into the word. */
export class WordError extends Error {
  readonly offset: number
  constructor(message: string, offset: number) {
    super(message)
    this.offset = offset
  }
}

/** Looks a variable up; undefined = unset. */
export type Lookup = (name: string) => string | undefined

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r'
const isNameStart = (c: string): boolean => /[A-Za-z_]/.test(c)
const isNameChar = (c: string): boolean => /[A-Za-z0-9_]/.test(c)

/** A word and the offset in the source text where it starts. */
export interface Word { text: string; offset: number }

/**
 * Docker's parseWords (parser/line_parsers.go): split at whitespace outside quotes. An escape
 * character protects the next character (so `\"` does not open a quote); quotes and escapes stay.
 */
export function splitWords(s: string, escape = '\\'): Word[] {
  const words: Word[] = []
  let cur = ''
  let start = -1
  let quote = ''
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    if (quote === '' && isSpace(c)) {
      if (start >= 0) { words.push({ text: cur, offset: start }); cur = ''; start = -1 }
      continue
    }
    if (start < 0) start = i
    if (c === escape && quote !== "'" && i + 1 < s.length) {
      cur += c + s[i + 1]!
      i++
      continue
    }
    if (quote === '' && (c === '"' || c === "'")) quote = c
    else if (c === quote) quote = ''
    cur += c
  }
  if (start >= 0) words.push({ text: cur, offset: start })
  return words
}

/**
 * Remove quotes and escapes from `word` and substitute variables; the names read are added to
 * `used` (they go into the step's cache key). Throws WordError.
 */
export function expandWord(word: string, lookup: Lookup, escape = '\\', used: Set<string> = new Set()): string {
  return new Lexer(word, lookup, escape, used).run('')
}

/**
 * A here-document body with variables substituted (an unquoted delimiter): quotes are ordinary
 * characters there, as in a shell here-document; the escape character still escapes `$`.
 */
export function expandHeredoc(body: string, lookup: Lookup, escape = '\\', used: Set<string> = new Set()): string {
  return new Lexer(body, lookup, escape, used, true, false).run('')
}

class Lexer {
  #s: string
  #i = 0
  #lookup: Lookup
  #escape: string
  #used: Set<string>
  #substitute: boolean
  #quotes: boolean

  constructor(s: string, lookup: Lookup, escape: string, used: Set<string>, substitute = true, quotes = true) {
    this.#quotes = quotes
    this.#s = s
    this.#lookup = lookup
    this.#escape = escape
    this.#used = used
    this.#substitute = substitute
  }

  /** Reads up to (not including) an unquoted `stop` character, or the end when stop is ''. */
  run(stop: string): string {
    let out = ''
    const s = this.#s
    while (this.#i < s.length) {
      const c = s[this.#i]!
      if (stop !== '' && c === stop) return out
      if (c === "'" && this.#quotes) out += this.#single()
      else if (c === '"' && this.#quotes) out += this.#double()
      else if (c === '$' && this.#substitute) out += this.#dollar()
      else if (c === this.#escape && this.#quotes) {
        this.#i++
        if (this.#i < s.length) out += s[this.#i++]!
      } else if (c === this.#escape && s[this.#i + 1] === '$') {
        out += '$'
        this.#i += 2
      } else {
        out += c
        this.#i++
      }
    }
    if (stop !== '') throw new WordError(`missing '${stop}'`, this.#i)
    return out
  }

  #single(): string {
    const start = this.#i
    const end = this.#s.indexOf("'", start + 1)
    if (end < 0) throw new WordError('unterminated single quote', start)
    this.#i = end + 1
    return this.#s.slice(start + 1, end)
  }

  #double(): string {
    const start = this.#i++
    let out = ''
    const s = this.#s
    while (this.#i < s.length) {
      const c = s[this.#i]!
      if (c === '"') { this.#i++; return out }
      if (c === '$' && this.#substitute) { out += this.#dollar(); continue }
      if (c === this.#escape) {
        const n = s[this.#i + 1]
        if (n === '"' || n === '$' || n === this.#escape) { out += n; this.#i += 2; continue }
      }
      out += c
      this.#i++
    }
    throw new WordError('unterminated double quote', start)
  }

  #get(name: string): string | undefined {
    this.#used.add(name)
    return this.#lookup(name)
  }

  #dollar(): string {
    const s = this.#s
    const start = this.#i++
    if (s[this.#i] === '{') {
      this.#i++
      let name = ''
      while (this.#i < s.length && isNameChar(s[this.#i]!)) name += s[this.#i++]!
      if (name === '' || !isNameStart(name[0]!)) throw new WordError('bad substitution: expected a variable name after ${', start)
      const c = s[this.#i]
      if (c === '}') { this.#i++; return this.#get(name) ?? '' }
      let op = ''
      if (c === ':' && /[-+?]/.test(s[this.#i + 1] ?? '')) { op = s.slice(this.#i, this.#i + 2); this.#i += 2 }
      else if (c !== undefined && /[-+?]/.test(c)) { op = c; this.#i++ }
      else throw new WordError(`bad substitution: unsupported modifier after \${${name}`, this.#i)
      const word = this.run('}')
      this.#i++ // the '}'
      const v = this.#get(name)
      const setNonEmpty = v !== undefined && v !== ''
      switch (op) {
        case ':-': return setNonEmpty ? v : word
        case '-': return v ?? word
        case ':+': return setNonEmpty ? word : ''
        case '+': return v !== undefined ? word : ''
        case ':?': if (!setNonEmpty) throw new WordError(`${name}: ${word || 'is not set or empty'}`, start); return v
        default: if (v === undefined) throw new WordError(`${name}: ${word || 'is not set'}`, start); return v
      }
    }
    let name = ''
    while (this.#i < s.length && isNameChar(s[this.#i]!)) name += s[this.#i++]!
    if (name === '' || !isNameStart(name[0]!)) {
      // `$` not followed by a name is itself (Docker keeps "$" and "$1"-like text as written).
      return '$' + name
    }
    return this.#get(name) ?? ''
  }
}
