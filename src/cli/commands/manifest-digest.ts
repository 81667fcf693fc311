/** `lading manifest-digest FILE`: the digest of a manifest file's exact bytes (as skopeo manifest-digest). */
import type { Command } from 'commander'

export function register(program: Command): void {
  program
    .command('manifest-digest')
    .description('print the digest of a manifest (or index) file, computed over its exact bytes')
    .argument('<file>', 'a manifest or index JSON file')
    .action(async (file: string) => {
      const { promises: fsp } = await import('node:fs')
      const { digestOf } = await import('../../digest/digest.js')
      const { LadingError } = await import('../../errors.js')
      const { DEFAULT_MAX_DOCUMENT_BYTES } = await import('../../io/limits.js')
      const { manifestMediaType } = await import('../../spec/parse.js')
      const { MediaType } = await import('../../spec/media-types.js')
      const st = await fsp.stat(file)
      if (!st.isFile()) throw new LadingError('USAGE', `${file}: not a regular file`)
      if (st.size > DEFAULT_MAX_DOCUMENT_BYTES)
        throw new LadingError('SIZE_LIMIT', `${file}: larger than the limit of ${DEFAULT_MAX_DOCUMENT_BYTES} bytes for a manifest`)
      const bytes = await fsp.readFile(file)
      // The media type check rejects what is not a manifest at all (and schema 1, whose digest is
      // computed over the payload without its signatures, which Lading does not support).
      const mt = manifestMediaType(bytes, file)
      if (mt === MediaType.DockerManifestV1Signed || mt === MediaType.DockerManifestV1) {
        throw new LadingError('UNSUPPORTED', `${file}: Docker schema 1 manifests are not supported`)
      }
      process.stdout.write(digestOf(bytes) + '\n')
    })
}
