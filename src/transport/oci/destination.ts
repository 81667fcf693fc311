/**
 * oci: destination: an OCI image layout directory (created if absent), written through the
 * store's Layout. A directory this destination created is removed again if the copy does not
 * commit (a failed or interrupted copy leaves nothing behind), unless a tag appeared in it
 * meanwhile (another writer's); an existing layout is only ever added to, so it stays valid.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { LadingError } from '../../errors.js'
import { removeTemp } from '../../io/cleanup.js'
import { Layout } from '../../store/layout.js'
import type { ImageDestination, ImageReference, TransportOptions } from '../types.js'
import { displayReference } from '../reference.js'
import { LayoutDestination } from './layout-destination.js'

type OciRef = Extract<ImageReference, { transport: 'oci' }>

export async function ociDestination(ref: OciRef, _opts: TransportOptions): Promise<ImageDestination> {
  if (ref.digest !== undefined) throw new LadingError('USAGE', `${displayReference(ref)}@${ref.digest}: a destination is named by a tag, not a digest`)
  // Initialising the directory (a lock, index.json and oci-layout, each fsynced) runs while the
  // copy fetches the source's manifest and config; the first use of the layout awaits it.
  // mkdir tells which directory it created (the topmost, when parents were missing too).
  let created: string | undefined
  const opening = fsp.mkdir(path.resolve(ref.dir), { recursive: true }).then(async (top) => {
    created = top
    try {
      return await Layout.init(ref.dir)
    } catch (e) {
      if (created !== undefined) await fsp.rm(created, { recursive: true, force: true, maxRetries: 3 })
      created = undefined
      throw e
    }
  })
  const abandon = async (layout: Layout): Promise<void> => {
    if (created === undefined) return
    if ((await layout.readIndex().catch(() => undefined))?.manifests.length !== 0) return
    // Counted among the temporary files an interrupted run reports (src/io/cleanup.ts).
    await removeTemp(created)
  }
  return new LayoutDestination(ref, opening, abandon)
}
