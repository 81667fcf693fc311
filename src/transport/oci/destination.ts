/** oci: destination: an OCI image layout directory (created if absent), written through the store's Layout. */
import { LadingError } from '../../errors.js'
import { Layout } from '../../store/layout.js'
import type { ImageDestination, ImageReference, TransportOptions } from '../types.js'
import { displayReference } from '../reference.js'
import { LayoutDestination } from './layout-destination.js'

type OciRef = Extract<ImageReference, { transport: 'oci' }>

export async function ociDestination(ref: OciRef, _opts: TransportOptions): Promise<ImageDestination> {
  if (ref.digest !== undefined) throw new LadingError('USAGE', `${displayReference(ref)}@${ref.digest}: a destination is named by a tag, not a digest`)
  // Initialising the directory (a lock, index.json and oci-layout, each fsynced) runs while the
  // copy fetches the source's manifest and config; the first use of the layout awaits it.
  return new LayoutDestination(ref, Layout.init(ref.dir))
}
