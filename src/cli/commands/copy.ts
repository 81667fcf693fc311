/**
 * `lading copy SRC DEST`: copy an image (or an index) between any two transports, with skopeo's
 * flags. Progress goes to stderr only (stdout may carry a docker-archive:- stream). An interrupt
 * (SIGINT/SIGTERM) closes both ends so temp spools are removed; what the destination already
 * holds stays valid (see src/copy/copy.ts) and a rerun completes the copy.
 */
import type { Command } from 'commander'
import { collect } from '../util.js'

interface CopyFlags {
  all?: boolean
  platform?: string[]
  format?: string
  preserveDigests?: boolean
  destCompress?: string
  destCompressLevel?: string
  additionalTag?: string[]
  digestfile?: string
  referrers?: boolean
  quiet?: boolean
  progress?: string
  srcCreds?: string
  destCreds?: string
  srcTlsVerify?: string | boolean
  destTlsVerify?: string | boolean
  srcCertDir?: string
  destCertDir?: string
  authfile?: string
  srcAuthfile?: string
  destAuthfile?: string
  concurrency?: string
  tmpdir?: string
}

export function register(program: Command): void {
  program
    .command('copy')
    .description('copy an image between transports: oci:, oci-archive:, docker-archive:, dir:, docker://')
    .argument('<source>', 'source image reference, e.g. docker://busybox, oci:DIR:TAG, docker-archive:FILE')
    .argument('<destination>', 'destination image reference (docker-archive:- writes the archive to stdout)')
    .option('-a, --all', 'copy every image of an index, and the index')
    .option('--platform <os/arch[/variant]>', 'copy the image for this platform (repeatable; several keep a reduced index); default the host\'s', collect)
    .option('-f, --format <oci|v2s2>', 'convert manifests to OCI or Docker v2s2 (digests change, diff_ids do not)')
    .option('--preserve-digests', 'fail instead of making any change that alters a digest')
    .option('--dest-compress <gzip|zstd|none>', 'recompress layers for the destination')
    .option('--dest-compress-level <n>', 'compression level for --dest-compress')
    .option('--additional-tag <tag>', 'also tag the image (docker-archive: NAME:TAG)', collect)
    .option('--digestfile <file>', 'write the digest of the manifest written to this file')
    .option('--referrers', 'also copy manifests that refer to the image (signatures, SBOMs)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--progress <mode>', 'progress output on stderr: json, plain or tty (default: tty on a terminal, else plain)')
    .option('--src-creds <user:pass>', 'credentials for the source registry')
    .option('--dest-creds <user:pass>', 'credentials for the destination registry')
    .option('--src-tls-verify [bool]', 'source registry: verify TLS; false also allows plain HTTP (default true)')
    .option('--dest-tls-verify [bool]', 'destination registry: verify TLS; false also allows plain HTTP (default true)')
    .option('--src-cert-dir <dir>', 'source registry: *.crt CAs and *.cert/*.key client certificate')
    .option('--dest-cert-dir <dir>', 'destination registry: *.crt CAs and *.cert/*.key client certificate')
    .option('--authfile <file>', 'auth file for both registries')
    .option('--src-authfile <file>', 'auth file for the source registry')
    .option('--dest-authfile <file>', 'auth file for the destination registry')
    .option('--concurrency <n>', 'blobs copied at once (default 3)')
    .option('--tmpdir <dir>', 'where archive transports spool (default $TMPDIR or /tmp)')
    .action(async (source: string, destination: string, f: CopyFlags) => {
      // One batch of imports (they load side by side), none this copy does not need.
      const [{ LadingError }, { parseReference }, { openSource, openDestination }, { copyImage }, { parsePlatform }, { registryOptionsFromFlags }, { ProgressPrinter, chooseProgressMode }] = await Promise.all([
        import('../../errors.js'),
        import('../../transport/reference.js'),
        import('../../transport/open.js'),
        import('../../copy/copy.js'),
        import('../../spec/platform.js'),
        import('../../transport/registry/cli-options.js'),
        import('../progress.js'),
      ])

      const srcRef = parseReference(source)
      const destRef = parseReference(destination)
      if (f.format !== undefined && f.format !== 'oci' && f.format !== 'v2s2') throw new LadingError('USAGE', `--format: expected oci or v2s2, got ${JSON.stringify(f.format)}`)
      if (f.progress !== undefined && !['json', 'plain', 'tty'].includes(f.progress)) throw new LadingError('USAGE', `--progress: expected json, plain or tty, got ${JSON.stringify(f.progress)}`)
      if (f.all && f.platform?.length) throw new LadingError('USAGE', '--all and --platform cannot be combined')
      const intFlag = (v: string | undefined, name: string, min: number, max: number): number | undefined => {
        if (v === undefined) return undefined
        const n = Number(v)
        if (!Number.isInteger(n) || n < min || n > max) throw new LadingError('USAGE', `${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`)
        return n
      }
      const level = intFlag(f.destCompressLevel, '--dest-compress-level', -7, 22)
      const concurrency = intFlag(f.concurrency, '--concurrency', 1, 64)
      if (level !== undefined && f.destCompress === undefined) throw new LadingError('USAGE', '--dest-compress-level needs --dest-compress')
      const tmp = f.tmpdir !== undefined ? { tmpDir: f.tmpdir } : {}
      const srcOpts = { ...registryOptionsFromFlags({ tlsVerify: f.srcTlsVerify, certDir: f.srcCertDir, creds: f.srcCreds, authfile: f.srcAuthfile ?? f.authfile }, 'src-'), ...tmp }
      const destOpts = { ...registryOptionsFromFlags({ tlsVerify: f.destTlsVerify, certDir: f.destCertDir, creds: f.destCreds, authfile: f.destAuthfile ?? f.authfile }, 'dest-'), ...tmp }

      // Every flag is checked before anything is opened: a usage error never touches the source.
      const destCompress = f.destCompress !== undefined ? (await import('../../io/compression.js')).parseCompression(f.destCompress) : undefined
      const platforms = f.platform?.length ? f.platform.map(parsePlatform) : undefined
      const printer = new ProgressPrinter(chooseProgressMode(f))
      // A registry destination is opened beside the source: opening it only starts its connection
      // and ping, which then overlap the source's reads. Others are opened once the source is.
      const earlyDest = destRef.transport === 'docker' ? openDestination(destRef, destOpts) : undefined
      earlyDest?.catch(() => { /* awaited below */ })
      // Its first request goes out before the source is read (one turn of the event loop runs
      // the promise chain up to the socket's connect): the reads then overlap the round trip.
      if (earlyDest) await new Promise<void>((resolve) => setImmediate(resolve))
      let src: Awaited<ReturnType<typeof openSource>>
      try {
        src = await openSource(srcRef, srcOpts)
      } catch (e) {
        void earlyDest?.then((d) => d.close(), () => {})
        throw e
      }
      let dest: Awaited<ReturnType<typeof openDestination>> | undefined
      const cleanup = async (): Promise<void> => {
        await Promise.allSettled([src.close(), dest?.close()])
      }
      // SIGINT/SIGTERM (src/cli/run.ts): closing the ends stops the copy and removes what the
      // destination made; the run's handler then reports and exits.
      const { onInterrupt } = await import('../../io/cleanup.js')
      const disposeInterrupt = onInterrupt(async () => {
        printer.finish()
        await cleanup()
      })
      try {
        dest = await (earlyDest ?? openDestination(destRef, destOpts))
        const result = await copyImage(src, dest, {
          ...(f.all ? { all: true } : {}),
          ...(platforms ? { platforms } : {}),
          ...(f.format ? { format: f.format as 'oci' | 'v2s2' } : {}),
          ...(f.preserveDigests ? { preserveDigests: true } : {}),
          ...(destCompress !== undefined ? { destCompress } : {}),
          ...(level !== undefined ? { destCompressLevel: level } : {}),
          ...(f.additionalTag?.length ? { additionalTags: f.additionalTag } : {}),
          ...(f.digestfile !== undefined ? { digestFile: f.digestfile } : {}),
          ...(f.referrers ? { referrers: true } : {}),
          ...(concurrency !== undefined ? { concurrency } : {}),
          onProgress: printer.onEvent,
        })
        const { blobs } = result
        printer.finish(`Copied ${result.digest}: ${blobs.copied} blob(s) sent, ${blobs.existed} already there${result.referrers ? `, ${result.referrers} referrer(s)` : ''}`)
        if (chooseProgressMode(f) === 'json') process.stderr.write(JSON.stringify({ type: 'done', digest: result.digest, mediaType: result.mediaType, size: result.size, blobs }) + '\n')
      } catch (e) {
        printer.finish()
        throw e
      } finally {
        disposeInterrupt()
        await cleanup()
      }
    })
}
