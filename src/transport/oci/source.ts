/** oci: source: an image in an OCI image layout directory, read through the store's Layout. */
import { Layout } from '../../store/layout.js'
import type { ImageReference, ImageSource, TransportOptions } from '../types.js'
import { displayReference } from '../reference.js'
import { LayoutSource } from './layout-source.js'

type OciRef = Extract<ImageReference, { transport: 'oci' }>

export async function ociSource(ref: OciRef, _opts: TransportOptions): Promise<ImageSource> {
  const layout = await Layout.open(ref.dir)
  return new LayoutSource(ref, layout, displayReference(ref), { tag: ref.tag, digest: ref.digest })
}
