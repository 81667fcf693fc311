/** Walk a directory tree into comparable records (never following symlinks), for tree equality tests. */
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import path from 'node:path'
import { getAttributeSync, listAttributesSync } from '@napi-rs/xattr'

export interface Node {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket'
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  link?: string
  rdev?: number
  nlink: number
  xattrs: string
}

function typeOf(st: import('node:fs').Stats): Node['type'] {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isCharacterDevice()) return 'char'
  if (st.isBlockDevice()) return 'block'
  if (st.isFIFO()) return 'fifo'
  return 'socket'
}

/** rel path ('.' for the root) -> node. */
export function walkTree(root: string): Map<string, Node> {
  const out = new Map<string, Node>()
  const visit = (abs: string, rel: string): void => {
    const st = lstatSync(abs)
    const type = typeOf(st)
    let xattrs = ''
    try {
      xattrs = listAttributesSync(abs)
        .sort()
        .map((n) => `${n}=${getAttributeSync(abs, n)?.toString('hex')}`)
        .join(',')
    } catch {
      // filesystems without xattrs
    }
    const node: Node = {
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: type === 'file' ? st.size : 0,
      mtime: Math.floor(st.mtimeMs / 1000),
      nlink: type === 'dir' ? 0 : st.nlink,
      xattrs,
    }
    if (type === 'symlink') node.link = readlinkSync(abs)
    if (type === 'char' || type === 'block') node.rdev = st.rdev
    out.set(rel, node)
    if (type === 'dir') for (const n of readdirSync(abs)) visit(path.join(abs, n), rel === '.' ? n : `${rel}/${n}`)
  }
  visit(root, '.')
  return out
}

/** Differences between two trees, as readable lines; file contents compared byte for byte. */
export function diffTrees(a: string, b: string, opts: { ignore?: (rel: string, key: keyof Node, na: Node, nb: Node) => boolean } = {}): string[] {
  const ta = walkTree(a)
  const tb = walkTree(b)
  const out: string[] = []
  for (const rel of new Set([...ta.keys(), ...tb.keys()])) {
    const na = ta.get(rel)
    const nb = tb.get(rel)
    if (!na || !nb) {
      out.push(`${rel}: only in ${na ? 'first' : 'second'}`)
      continue
    }
    for (const key of Object.keys(na) as Array<keyof Node>) {
      if (na[key] !== nb[key] && !opts.ignore?.(rel, key, na, nb)) out.push(`${rel}: ${key} ${String(na[key])} != ${String(nb[key])}`)
    }
    if (na.type === 'file' && nb.type === 'file' && na.size === nb.size) {
      if (!readFileSync(path.join(a, rel)).equals(readFileSync(path.join(b, rel)))) out.push(`${rel}: content differs`)
    }
  }
  return out
}
