/** A small tree with every entry type a layer carries, built in code (root needed for chown/mknod). */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { inCI } from '../helpers/tools.js'

export const isRoot = process.getuid?.() === 0

export function hasSetfattr(): boolean {
  try {
    execFileSync('setfattr', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Set an xattr with setfattr (an implementation independent of ours); false if the filesystem refuses. */
export function setXattr(p: string, name: string, value: string): boolean {
  try {
    execFileSync('setfattr', ['-h', '-n', name, '-v', value, p], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export interface FixtureInfo {
  xattrs: boolean
  devices: boolean
}

export function buildTree(root: string): FixtureInfo {
  const w = (rel: string, data: string | Buffer, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true })
    fs.writeFileSync(path.join(root, rel), data)
    fs.chmodSync(path.join(root, rel), mode)
  }
  w('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n')
  w('etc/keep', 'keep me\n')
  w('etc/meta', 'metadata only\n')
  w('etc/own', 'owner change\n')
  w('usr/bin/tool', '#!/bin/sh\necho tool\n', 0o755)
  w('usr/bin/suid', 'setuid\n', 0o4755)
  w('usr/bin/sgid', 'setgid\n', 0o2711)
  fs.symlinkSync('tool', path.join(root, 'usr/bin/link'))
  fs.symlinkSync('/etc/passwd', path.join(root, 'usr/bin/abslink'))
  w('var/cache/dir1/a', 'a')
  w('var/cache/dir1/b/c', 'c')
  fs.mkdirSync(path.join(root, 'tmp'))
  fs.chmodSync(path.join(root, 'tmp'), 0o1777)
  w('opt/t2d', 'file that becomes a directory')
  w('opt/d2f/child', 'dir that becomes a file')
  fs.symlinkSync('elsewhere', path.join(root, 'opt/l2f'))
  w('data/big', Buffer.alloc(3 * 1024 * 1024 + 17, 'big data '))
  w('data/empty', '')
  w('masked/x', 'masked')
  w('hl/orig', 'hardlinked content\n')
  fs.linkSync(path.join(root, 'hl/orig'), path.join(root, 'hl/second'))
  w('xat/f', 'xattr target\n')
  w('same/size', 'AAAA')
  w('uni/naïve-日本', 'unicode name\n')
  fs.mkdirSync(path.join(root, 'ids'))
  w('ids/f', 'ids\n')
  let devices = false
  if (isRoot) {
    fs.chownSync(path.join(root, 'ids'), 1000, 1001)
    fs.chownSync(path.join(root, 'ids/f'), 3000000, 65534)
    fs.chownSync(path.join(root, 'usr/bin/abslink'), 7, 8)
    execFileSync('mknod', [path.join(root, 'dev-null'), 'c', '1', '3'])
    execFileSync('mknod', [path.join(root, 'dev-blk'), 'b', '7', '200'])
    devices = true
  }
  execFileSync('mkfifo', [path.join(root, 'fifo')])
  let xattrs = false
  // Locally a missing setfattr (Debian package `attr`) leaves xattrs out; CI must check them.
  if (!hasSetfattr() && inCI()) throw new Error('setfattr (package attr) not installed, and CI=true forbids skipping the xattr checks')
  if (hasSetfattr()) {
    xattrs = setXattr(path.join(root, 'xat/f'), 'user.color', 'blue')
    if (isRoot) setXattr(path.join(root, 'etc/keep'), 'trusted.note', 'kept')
  }
  // Fixed mtimes (files and dirs) so records compare exactly after extraction.
  const t = new Date('2021-06-01T12:00:00Z')
  const walk = (rel: string): void => {
    const abs = path.join(root, rel)
    const st = fs.lstatSync(abs)
    if (st.isDirectory()) for (const n of fs.readdirSync(abs)) walk(path.join(rel, n))
    if (st.isSymbolicLink()) fs.lutimesSync(abs, t, t)
    else fs.utimesSync(abs, t, t)
  }
  walk('')
  return { xattrs, devices }
}
