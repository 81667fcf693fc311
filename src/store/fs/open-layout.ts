/**
 * Creating and opening an OCI image layout directory (image-spec image-layout.md): the file-system
 * side of Layout.init / Layout.open. Returns the three stores over the directory.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { LadingError, isErrno, quoteName } from '../../errors.js'
import { atomicWriteFile, isTempName } from '../../io/fs.js'
import { breakerPath } from '../../io/lock.js'
import { MediaType } from '../../spec/media-types.js'
import { parseLayoutFile } from '../../spec/parse.js'
import type { Index } from '../../spec/types.js'
import { FsBlobStore } from './blob-store.js'
import { FsIndexStore } from './index-store.js'
import { BLOBS_DIR, IMAGE_LAYOUT_VERSION, INDEX_FILE, INDEX_LOCK_FILE, LAYOUT_FILE, readRegularFile } from './layout-files.js'
import { FsWriterLeases } from './writer-leases.js'

export interface FsStores {
  name: string
  blobs: FsBlobStore
  index: FsIndexStore
  leases: FsWriterLeases
}

function storesAt(abs: string): FsStores {
  const index = new FsIndexStore(abs)
  return { name: abs, blobs: new FsBlobStore(abs), index, leases: new FsWriterLeases(abs, index) }
}

/**
 * Create a layout (dir, oci-layout, index.json, blobs/sha256). On an existing layout it only
 * checks it (idempotent). A non-empty directory that is not a layout is refused (EXISTS).
 */
export async function initLayoutDir(dir: string): Promise<FsStores> {
  const abs = path.resolve(dir)
  await fsp.mkdir(abs, { recursive: true })
  const stores = storesAt(abs)
  // Under the index lock, so two concurrent inits of one directory both succeed.
  return stores.index.withLock(async () => {
    const layoutFile = path.join(abs, LAYOUT_FILE)
    let hasLayoutFile = true
    try {
      await fsp.lstat(layoutFile)
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e
      hasLayoutFile = false
    }
    if (hasLayoutFile) {
      const opened = await openLayoutDir(abs)
      await opened.index.read()
      return opened
    }
    const entries = (await fsp.readdir(abs)).filter((n) => !isTempName(n) && n !== INDEX_LOCK_FILE && n !== breakerPath(INDEX_LOCK_FILE))
    if (entries.length > 0) {
      throw new LadingError('EXISTS', `${dir}: directory is not empty and is not an OCI layout (no ${LAYOUT_FILE}); refusing to initialise it`)
    }
    await fsp.mkdir(path.join(abs, BLOBS_DIR, 'sha256'), { recursive: true })
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }
    await atomicWriteFile(path.join(abs, INDEX_FILE), JSON.stringify(index))
    // oci-layout last: its presence marks a complete layout.
    await atomicWriteFile(layoutFile, JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION }))
    return stores
  })
}

/** Open an existing layout; INVALID_LAYOUT if oci-layout is missing, unreadable or of an unknown version. */
export async function openLayoutDir(dir: string): Promise<FsStores> {
  const abs = path.resolve(dir)
  const file = path.join(abs, LAYOUT_FILE)
  let bytes: Buffer
  try {
    bytes = await readRegularFile(file, 64 * 1024, `${dir}/${LAYOUT_FILE}`)
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) {
      const dirExists = await fsp.stat(abs).then(
        (s) => s.isDirectory(),
        () => false,
      )
      if (!dirExists) throw new LadingError('NOT_FOUND', `${dir}: no such layout directory`, { cause: e })
      throw new LadingError('INVALID_LAYOUT', `${dir}: not an OCI image layout: ${LAYOUT_FILE} is missing`, { cause: e })
    }
    if (e instanceof LadingError) throw new LadingError('INVALID_LAYOUT', e.message, { cause: e })
    throw new LadingError('INVALID_LAYOUT', `${dir}/${LAYOUT_FILE}: unreadable: ${(e as Error).message}`, { cause: e })
  }
  const parsed = parseLayoutFile(bytes, `${dir}/${LAYOUT_FILE}`)
  if (parsed.imageLayoutVersion !== IMAGE_LAYOUT_VERSION) {
    // parseLayoutFile already refuses other versions; this guards the contract locally.
    throw new LadingError(
      'INVALID_LAYOUT',
      `${dir}/${LAYOUT_FILE}: unknown imageLayoutVersion ${quoteName(parsed.imageLayoutVersion)} (Lading reads ${IMAGE_LAYOUT_VERSION})`,
    )
  }
  return storesAt(abs)
}
