/**
 * WWW-Authenticate challenges (RFC 9110 §11.6.1; the bearer flow of the Docker token spec that
 * distribution implements). Values are untrusted: the parser is bounded and never throws.
 */

export interface Challenge {
  /** Lowercased scheme: `basic`, `bearer`, ... */
  scheme: string
  /** Auth parameters with lowercased names (realm, service, scope, error). */
  params: Record<string, string>
}

const MAX_HEADER = 8192

/** Parse one or more challenges from a header value (or several header values). */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return []
  const values = Array.isArray(header) ? header : [header]
  const out: Challenge[] = []
  for (const value of values) out.push(...parseOne(value.slice(0, MAX_HEADER)))
  return out
}

function parseOne(s: string): Challenge[] {
  const out: Challenge[] = []
  let i = 0
  let current: Challenge | undefined
  const ws = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++
  }
  const token = (): string => {
    const start = i
    while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z/]/.test(s[i]!)) i++
    return s.slice(start, i)
  }
  while (i < s.length) {
    ws()
    const name = token()
    if (!name) {
      i++
      continue
    }
    let j = i
    while (j < s.length && s[j] === ' ') j++
    if (s[j] === '=') {
      // auth-param of the current challenge
      i = j + 1
      while (i < s.length && s[i] === ' ') i++
      let value = ''
      if (s[i] === '"') {
        i++
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++
          value += s[i]
          i++
        }
        i++
      } else {
        const start = i
        while (i < s.length && s[i] !== ',' && s[i] !== ' ') i++
        value = s.slice(start, i)
      }
      if (current) current.params[name.toLowerCase()] = value
    } else {
      current = { scheme: name.toLowerCase(), params: {} }
      out.push(current)
    }
  }
  return out
}
