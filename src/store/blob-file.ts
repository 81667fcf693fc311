/**
 * Blob operations on a Layout that work with files rather than streams, for a registry that keeps
 * one content store and many layouts on one file system (src/server/storage.ts):
 *
 * - `linkBlob`: the same blob in another layout, as a hard link (stored once). The link's inode
 *   mtime is refreshed, so `gc --keep-recent` (Layout.gc minAgeMs) treats it as just written.
 * - `openBlobFile`: an open handle on a blob for ranged reads, refusing symlinks and non-regular
 *   files as Layout does. Reads through it are NOT verified: the bytes were verified when written
 *   and the reader (a registry client) verifies what it gets; hashing a 95 MB blob on every GET
 *   would double the server's CPU per pull. `lading validate` checks the stored bytes.
 *
 * Layout's own blob-directory checks run first (through hasBlob), so a symlinked blobs/ is refused
 * before anything is created through it.
 */
import { constants, promises as fsp, type Stats } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Digest } from '../digest/digest.js'
import { LadingError, isErrno } from '../errors.js'
import { fsyncDir } from '../io/fs.js'
import type { Layout } from './layout.js'

/** blobs/<alg> directories already made and checked, per layout (they are never replaced by us). */
const checkedDirs = new WeakMap<Layout, Set<string>>()

async function ensureBlobDir(layout: Layout, d: Digest): Promise<string> {
  const dir = path.dirname(layout.blobPath(d))
  if (checkedDirs.get(layout)?.has(dir)) return dir
  await layout.hasBlob(d) // Layout's check: blobs/ and blobs/<alg> are real directories when present
  await fsp.mkdir(dir, { recursive: true })
  for (const p of [path.dirname(dir), dir]) {
    const st = await fsp.lstat(p)
    if (!st.isDirectory()) throw new LadingError('INVALID_LAYOUT', `${layout.dir}: ${path.relative(layout.dir, p)} is not a directory; refusing to use it`)
  }
  let set = checkedDirs.get(layout)
  if (!set) checkedDirs.set(layout, (set = new Set()))
  set.add(dir)
  return dir
}

/**
 * Hard-link blob `digest` of `from` into `to`. Returns false when `from` lacks it. A blob `to`
 * already has is kept (and touched). Both layouts must be on one file system.
 */
export async function linkBlob(from: Layout, to: Layout, digest: Digest): Promise<boolean> {
  if (!(await from.hasBlob(digest))) return false
  const dir = await ensureBlobDir(to, digest)
  try {
    await fsp.link(from.blobPath(digest), to.blobPath(digest))
    await fsyncDir(dir)
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return false // removed from `from` meanwhile
    if (!isErrno(e, 'EEXIST')) throw e
  }
  await touch(to.blobPath(digest))
  return true
}

/** An open blob for ranged reads; undefined when absent. INVALID_LAYOUT for a symlink or non-file. */
export async function openBlobFile(layout: Layout, digest: Digest): Promise<{ fh: FileHandle; size: number } | undefined> {
  await layout.hasBlob(digest)
  let fh: FileHandle
  try {
    fh = await fsp.open(layout.blobPath(digest), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined
    if (isErrno(e, 'ELOOP')) throw new LadingError('INVALID_LAYOUT', `${layout.dir}: blob ${digest} is a symbolic link; refusing to follow it`, { cause: e })
    throw e
  }
  let st: Stats
  try {
    st = await fh.stat()
  } catch (e) {
    await fh.close()
    throw e
  }
  if (!st.isFile()) {
    await fh.close()
    throw new LadingError('INVALID_LAYOUT', `${layout.dir}: blob ${digest} is not a regular file; refusing it`)
  }
  return { fh, size: st.size }
}

/** Number of hard links of a blob (1: only this layout has it); undefined when absent. */
export async function blobLinkCount(layout: Layout, digest: Digest): Promise<{ nlink: number; mtimeMs: number; size: number } | undefined> {
  try {
    const st = await fsp.lstat(layout.blobPath(digest))
    return st.isFile() ? { nlink: st.nlink, mtimeMs: st.mtimeMs, size: st.size } : undefined
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined
    throw e
  }
}

async function touch(p: string): Promise<void> {
  const now = new Date()
  await fsp.utimes(p, now, now).catch(() => {})
}

/**
 * Layout.init for a directory that already holds other layouts below it (a registry keeps
 * repository `a/b` inside repository `a`'s directory, as zot does): Layout.init refuses a
 * non-empty directory that is not a layout, so here the entries that are directories holding
 * layouts (or further such directories) are allowed. Anything else present is refused as init
 * refuses it. Idempotent, under the same index lock as Layout.init.
 */
export async function initLayoutAmongChildren(dir: string): Promise<Layout> {
  const { Layout, INDEX_LOCK_FILE, LAYOUT_FILE, INDEX_FILE, BLOBS_DIR, IMAGE_LAYOUT_VERSION } = await import('./layout.js')
  try {
    return await Layout.init(dir)
  } catch (e) {
    if (!(e instanceof LadingError && e.code === 'EXISTS')) throw e
  }
  const { withLock, breakerPath } = await import('../io/lock.js')
  const { atomicWriteFile, isTempName } = await import('../io/fs.js')
  return withLock(path.join(dir, INDEX_LOCK_FILE), async () => {
    const has = await fsp.lstat(path.join(dir, LAYOUT_FILE)).then(
      () => true,
      () => false,
    )
    if (!has) {
      for (const name of await fsp.readdir(dir)) {
        if (isTempName(name) || name === INDEX_LOCK_FILE || name === breakerPath(INDEX_LOCK_FILE)) continue
        const st = await fsp.lstat(path.join(dir, name))
        if (!st.isDirectory() || name === BLOBS_DIR) {
          throw new LadingError('EXISTS', `${dir}: directory holds ${name} and is not an OCI layout; refusing to initialise it`)
        }
      }
      await fsp.mkdir(path.join(dir, BLOBS_DIR, 'sha256'), { recursive: true })
      await atomicWriteFile(
        path.join(dir, INDEX_FILE),
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }),
      )
      await atomicWriteFile(path.join(dir, LAYOUT_FILE), JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION }))
    }
    return Layout.open(dir)
  })
}
