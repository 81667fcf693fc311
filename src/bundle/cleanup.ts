/**
 * Removing what an operation created, on failure. A rootless unpack leaves directories of mode
 * 000 that even their owner cannot list, so a plain recursive rm fails with EACCES: we then
 * grant the owner rwx on directories (never following symlinks: lchmod is not needed because
 * chmod is only applied to what lstat says is a directory) and retry.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { isErrno } from '../errors.js'

async function openUp(dir: string): Promise<void> {
  let st
  try {
    st = await fsp.lstat(dir)
  } catch {
    return
  }
  if (!st.isDirectory()) return
  if ((st.mode & 0o700) !== 0o700) await fsp.chmod(dir, (st.mode & 0o7777) | 0o700).catch(() => {})
  let names: string[]
  try {
    names = await fsp.readdir(dir)
  } catch {
    return
  }
  for (const n of names) await openUp(path.join(dir, n))
}

/** rm -rf that also copes with mode-000 directories we own. */
export async function removeTree(p: string): Promise<void> {
  try {
    await fsp.rm(p, { recursive: true, force: true })
  } catch (e) {
    if (!isErrno(e, 'EACCES') && !isErrno(e, 'EPERM')) throw e
    await openUp(p)
    await fsp.rm(p, { recursive: true, force: true })
  }
}

/** Is `dir` absent or an empty directory? Throws for a non-directory. */
export async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  let names: string[]
  try {
    names = await fsp.readdir(dir)
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return true
    throw e
  }
  return names.length === 0
}
