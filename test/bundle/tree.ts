/**
 * A path-by-path record of a directory tree for comparing what two unpackers made: type, mode,
 * uid, gid, size, content digest, link target, xattrs and (for non-directories) mtime.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import path from 'node:path'
import { digestOf } from '../../src/digest/digest.js'
import { readXattrs } from '../../src/layer/snapshot.js'

export interface NodeRecord {
  type: string
  mode: string
  uid: number
  gid: number
  size?: number
  hash?: string
  link?: string
  xattrs?: string
  mtime?: number
  nlink?: number
}

export interface TreeOptions {
  /** Compare mtimes of non-directories (default true). */
  mtimes?: boolean
  /** Record hardlink counts of regular files. */
  nlink?: boolean
  /** Skip these relative paths (and below). */
  skip?: string[]
}

function typeOf(st: import('node:fs').Stats): string {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isFIFO()) return 'fifo'
  if (st.isCharacterDevice()) return 'char'
  if (st.isBlockDevice()) return 'block'
  return 'socket'
}

export function treeOf(root: string, opts: TreeOptions = {}): Map<string, NodeRecord> {
  const out = new Map<string, NodeRecord>()
  const skip = new Set(opts.skip ?? [])
  const walk = (rel: string): void => {
    const abs = rel === '' ? root : path.join(root, rel)
    const st = lstatSync(abs)
    const r: NodeRecord = { type: typeOf(st), mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid }
    if (st.isFile()) {
      r.size = st.size
      r.hash = digestOf(readFileSync(abs))
      if (opts.nlink) r.nlink = st.nlink
    }
    if (st.isSymbolicLink()) r.link = readlinkSync(abs)
    const x = readXattrs(abs)
    if (x)
      r.xattrs = Object.entries(x)
        .map(([k, v]) => `${k}=${v.toString('base64')}`)
        .join(';')
    if (!st.isDirectory() && opts.mtimes !== false) r.mtime = Math.floor(st.mtimeMs / 1000)
    out.set(rel === '' ? '.' : rel, r)
    if (st.isDirectory()) {
      for (const n of readdirSync(abs).sort()) {
        const child = rel === '' ? n : `${rel}/${n}`
        if (!skip.has(child)) walk(child)
      }
    }
  }
  walk('')
  return out
}

/** Human-readable differences (at most `max`), empty when the trees are equal. */
export function diffTrees(a: Map<string, NodeRecord>, b: Map<string, NodeRecord>, names: [string, string] = ['a', 'b'], max = 25): string[] {
  const out: string[] = []
  for (const [p, ra] of a) {
    const rb = b.get(p)
    if (!rb) out.push(`${p}: only in ${names[0]}`)
    else if (JSON.stringify(ra) !== JSON.stringify(rb)) out.push(`${p}: ${names[0]} ${JSON.stringify(ra)} != ${names[1]} ${JSON.stringify(rb)}`)
    if (out.length >= max) return out
  }
  for (const p of b.keys()) {
    if (!a.has(p)) out.push(`${p}: only in ${names[1]}`)
    if (out.length >= max) return out
  }
  return out
}
