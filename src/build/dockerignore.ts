/**
 * `.dockerignore` (the Dockerfile reference §.dockerignore file, implemented by
 * moby/patternmatcher): one pattern a line, `#` comments, blank lines ignored; patterns are
 * cleaned (leading `/` and `./` dropped, as filepath.Clean); `*` matches within one path component,
 * `?` one character, `[...]` a class, `**` any number of components; a line starting with `!` is an
 * exception. The last pattern that matches a path decides, and a pattern that matches a parent
 * directory matches everything below it.
 * Written by hand because the rules are moby's own (neither minimatch nor picomatch reproduce
 * the last-match-wins-with-parents rule), and the translation to regular expressions is short.
 */
import { LadingError } from '../errors.js'

interface Rule { re: RegExp; exclusion: boolean; pattern: string }

export class IgnoreRules {
  readonly #rules: Rule[]
  readonly hasExceptions: boolean

  constructor(patterns: readonly string[]) {
    this.#rules = []
    for (const raw of patterns) {
      let p = raw.trim()
      if (p === '' || p.startsWith('#')) continue
      let exclusion = false
      if (p.startsWith('!')) { exclusion = true; p = p.slice(1).trim() }
      p = cleanPattern(p)
      if (p === '') continue
      this.#rules.push({ re: globToRegExp(p, true), exclusion, pattern: p })
    }
    this.hasExceptions = this.#rules.some((r) => r.exclusion)
  }

  /** Is the context path `rel` ('/'-separated, relative) ignored? */
  ignores(rel: string): boolean {
    let ignored = false
    const parents = parentPaths(rel)
    for (const r of this.#rules) {
      // patternmatcher.MatchesOrParentMatches: the path itself or any of its parents.
      if (parents.some((p) => r.re.test(p))) ignored = !r.exclusion
    }
    return ignored
  }
}

function parentPaths(rel: string): string[] {
  const parts = rel.split('/')
  const out: string[] = []
  for (let i = 1; i <= parts.length; i++) out.push(parts.slice(0, i).join('/'))
  return out
}

/** filepath.Clean for patterns, relative to the context root. */
function cleanPattern(p: string): string {
  const out: string[] = []
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue
    if (c === '..') { out.pop(); continue }
    out.push(c)
  }
  return out.join('/')
}

/**
 * A glob (Go filepath.Match syntax, plus `**` when `doublestar`) as an anchored RegExp over
 * '/'-separated relative paths. USAGE error on a malformed class.
 */
export function globToRegExp(pattern: string, doublestar: boolean): RegExp {
  let re = '^'
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '*') {
      if (doublestar && pattern[i + 1] === '*') {
        i++
        if (pattern[i + 1] === '/') { i++; re += '(?:.*/)?' } else re += '.*'
      } else re += '[^/]*'
    } else if (c === '?') re += '[^/]'
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2)
      if (end < 0) throw new LadingError('USAGE', `pattern ${JSON.stringify(pattern)}: unterminated character class`)
      let cls = pattern.slice(i + 1, end)
      if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1)
      re += `[${cls.replace(/\\/g, '\\\\')}]`
      i = end
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += escapeRe(pattern[++i]!)
    } else re += escapeRe(c)
  }
  return new RegExp(re + '$', 's')
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c
}

/** Does `s` contain glob magic (filepath.Match's `*`, `?`, `[`)? */
export function hasGlob(s: string): boolean {
  return /[*?[]/.test(s)
}
