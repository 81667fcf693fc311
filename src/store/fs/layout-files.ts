/**
 * The names of an OCI image layout on disk (image-spec image-layout.md) and the one way its
 * small files are read: never through a symlink, never above a size limit.
 */
import type { Stats } from 'node:fs'
import { LadingError, isErrno } from '../../errors.js'
import { readSmallFileSync } from '../../io/fs.js'

/** image-layout.md §oci-layout file: the only version defined so far. */
export const IMAGE_LAYOUT_VERSION = '1.0.0'
export const INDEX_FILE = 'index.json'
export const LAYOUT_FILE = 'oci-layout'
export const BLOBS_DIR = 'blobs'
/** The lock guarding index.json; hidden, and not a temp name, so gc leaves it to src/io/lock.ts. */
export const INDEX_LOCK_FILE = '.index.json.lock'

export function notRegular(rel: string, st: Stats, layout: string): LadingError {
  const what = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'not a regular file'
  return new LadingError('INVALID_LAYOUT', `${layout}: ${rel} is ${what}; refusing it (a blob must be a regular file)`)
}

/** Read a small regular file without following a symlink, failing with SIZE_LIMIT above `max`. */
export async function readRegularFile(file: string, max: number, source: string): Promise<Buffer> {
  try {
    return readSmallFileSync(file, (st) => {
      if (!st.isFile()) throw new LadingError('INVALID_LAYOUT', `${source}: not a regular file`)
      if (st.size > max) throw new LadingError('SIZE_LIMIT', `${source}: ${st.size} bytes is larger than the limit of ${max} bytes`)
    })
  } catch (e) {
    if (isErrno(e, 'ELOOP')) throw new LadingError('INVALID_LAYOUT', `${source}: is a symbolic link; refusing to follow it`, { cause: e })
    throw e
  }
}
