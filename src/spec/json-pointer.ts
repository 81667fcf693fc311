/**
 * RFC 6901 JSON pointers, used to name the field a problem is about (`/layers/0/digest`).
 * The empty pointer "" means the whole document.
 */

/** Escape one reference token: `~` -> `~0`, `/` -> `~1` (RFC 6901 §3). */
export function escapePointerToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1')
}

/** Append a token to a pointer: pointerJoin('/layers', 0) === '/layers/0'. */
export function pointerJoin(base: string, ...tokens: Array<string | number>): string {
  return base + tokens.map((t) => '/' + escapePointerToken(t)).join('')
}

/** Printable form: the whole document is shown as `/` rather than an empty string. */
export function displayPointer(pointer: string): string {
  return pointer === '' ? '/' : pointer
}
