/** oci: source: an image in an OCI image layout directory, read through the store's Layout. */
import { Layout } from '../../store/layout.js'
import type { TransportOptions } from '../open.js'
import type { ImageReference, ImageSource } from '../types.js'
import { LayoutSource } from './layout-source.js'

type OciRef = Extract<ImageReference, { transport: 'oci' }>

export async function ociSource(ref: OciRef, _opts: TransportOptions): Promise<ImageSource> {
  const layout = await Layout.open(ref.dir)
  return new LayoutSource(ref, layout, `oci:${ref.dir}`, { tag: ref.tag, digest: ref.digest })
}
