/**
 * Hard links between OCI layouts on one filesystem: a base image taken FROM an `oci:` layout into
 * the build cache, and a built image written to an `oci:` destination, share their (immutable,
 * content-addressed) blobs instead of copying and re-hashing hundreds of megabytes. A link is
 * made only where the destination lacks the blob and the source file has the descriptor's size;
 * the content is still verified whenever it is read (Layout.getBlob checks size and digest), so a
 * corrupt source blob fails the build where it is used, as a copied one would. Where linking is
 * impossible (another filesystem, a refusing filesystem) nothing happens and the copy engine
 * copies as usual.
 */
import fs from 'node:fs'
import path from 'node:path'
import type { Descriptor } from '../spec/types.js'
import type { Layout } from '../store/layout.js'

export async function linkBlobs(from: Layout, to: Layout, descs: Array<Pick<Descriptor, 'digest' | 'size'>>): Promise<number> {
  let linked = 0
  for (const d of descs) {
    if (await to.hasBlob(d.digest)) continue
    const src = from.blobPath(d.digest)
    const dst = to.blobPath(d.digest)
    try {
      const st = fs.lstatSync(src)
      if (!st.isFile() || st.size !== d.size) continue
      fs.mkdirSync(path.dirname(dst), { recursive: true })
      // link(2) creates the name with the whole content at once: no partial blob is ever visible.
      fs.linkSync(src, dst)
      linked++
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'EEXIST') continue
      // EXDEV (another filesystem), EPERM (protected_hardlinks), ...: leave it to the copy.
      return linked
    }
  }
  return linked
}
