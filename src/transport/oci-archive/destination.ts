/**
 * oci-archive: destination: the image is written into an OCI layout in a private temp directory
 * (the same LayoutDestination as oci:), and commit() tars that layout to FILE in one forward
 * pass (temp file beside FILE + fsync + rename, or a stream for `-`). Unlike skopeo 1.9, which
 * replaces any FILE with one holding just this image, a FILE that has content is refused.
 */
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { makeTempDir, removeTemp, sweepAbandoned, tempDirPid } from '../../io/cleanup.js'
import { assertNoContent, sweepAbandonedTempsOf } from '../../io/fs.js'
import { Layout } from '../../store/layout.js'
import type { Descriptor, RawManifest } from '../../spec/types.js'
import { writeArchive } from '../archive/tar-output.js'
import { OCI_CAPABILITIES } from '../capabilities.js'
import { LayoutDestination } from '../oci/layout-destination.js'
import type { ImageDestination, ImageReference, TransportOptions } from '../types.js'

type OciArchiveRef = Extract<ImageReference, { transport: 'oci-archive' }>

/** The private layout's directory in the temp dir: `<prefix><pid>-XXXXXX` (src/io/cleanup.ts makeTempDir). */
const SPOOL_PREFIX = 'lading-oci-archive-'

export class OciArchiveDestination implements ImageDestination {
  readonly ref: OciArchiveRef
  readonly capabilities = OCI_CAPABILITIES
  readonly #inner: LayoutDestination
  readonly #tmp: string
  readonly #opts: TransportOptions

  private constructor(ref: OciArchiveRef, inner: LayoutDestination, tmp: string, opts: TransportOptions) {
    this.ref = ref
    this.#inner = inner
    this.#tmp = tmp
    this.#opts = opts
  }

  static async open(ref: OciArchiveRef, opts: TransportOptions): Promise<OciArchiveDestination> {
    const tmpDir = opts.tmpDir ?? os.tmpdir()
    if (ref.file !== '-') {
      // skopeo 1.9 silently replaces an oci-archive; Lading refuses, as skopeo does for a
      // docker-archive and Lading for a non-empty oci: or dir: (nothing is lost by a typo).
      await assertNoContent(ref.file, `oci-archive:${ref.file}`)
      await sweepAbandonedTempsOf(ref.file)
    }
    await sweepAbandoned(tmpDir, (name) => tempDirPid(name, SPOOL_PREFIX))
    const tmp = await makeTempDir(tmpDir, SPOOL_PREFIX)
    try {
      const layout = await Layout.init(path.join(tmp, 'layout'))
      return new OciArchiveDestination(ref, new LayoutDestination(ref, layout), tmp, opts)
    } catch (e) {
      await removeTemp(tmp)
      throw e
    }
  }

  hasBlob(desc: Descriptor): Promise<boolean> {
    return this.#inner.hasBlob(desc)
  }
  putBlob(body: Readable, expected?: Partial<Descriptor>): Promise<Descriptor> {
    return this.#inner.putBlob(body, expected)
  }
  putManifest(raw: RawManifest, tag?: string): Promise<Descriptor> {
    return this.#inner.putManifest(raw, tag)
  }

  async commit(): Promise<void> {
    await this.#inner.commit()
    const dir = (await this.#inner.layout()).dir
    await writeArchive(
      this.ref.file,
      this.#opts.stdout,
      async (sink) => {
        await sink.bytes('oci-layout', await fsp.readFile(path.join(dir, 'oci-layout')))
        await sink.dir('blobs/')
        for (const alg of (await fsp.readdir(path.join(dir, 'blobs'))).sort()) {
          await sink.dir(`blobs/${alg}/`)
          for (const name of (await fsp.readdir(path.join(dir, 'blobs', alg))).sort()) {
            if (name.startsWith('.')) continue // temp files of the store's atomic writes
            const file = path.join(dir, 'blobs', alg, name)
            const st = await fsp.stat(file)
            if (st.isFile()) await sink.file(`blobs/${alg}/${name}`, file, st.size)
          }
        }
        // index.json last: a reader that streams the archive sees every blob before the entry point.
        await sink.bytes('index.json', await fsp.readFile(path.join(dir, 'index.json')))
      },
      `oci-archive:${this.ref.file}`,
    )
  }

  /** `await using`: the same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async close(): Promise<void> {
    await this.#inner.close() // gives up its writer lease
    await removeTemp(this.#tmp)
  }
}

export function ociArchiveDestination(ref: OciArchiveRef, opts: TransportOptions): Promise<ImageDestination> {
  return OciArchiveDestination.open(ref, opts)
}
