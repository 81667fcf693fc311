/**
 * `lading copy SRC DEST`: copy an image (or an index) between any two transports, with skopeo's
 * flags. Progress goes to stderr only (stdout may carry a docker-archive:- stream). An interrupt
 * (SIGINT/SIGTERM) aborts the copy (src/copy/copy-references.ts), which closes both ends so temp spools are removed; what the destination already
 * holds stays valid (see src/copy/copy.ts) and a rerun completes the copy.
 */
import type { Command } from 'commander'
import { collect } from '../util.js'

interface CopyFlags {
  all?: boolean
  platform?: string[]
  format?: string
  preserveDigests?: boolean
  destCompress?: boolean
  destCompressFormat?: string
  destCompressLevel?: string
  destDecompress?: boolean
  multiArch?: string
  overrideArch?: string
  overrideOs?: string
  overrideVariant?: string
  retryTimes?: string
  removeSignatures?: boolean
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
    .option('--platform <os/arch[/variant]>', "copy the image for this platform (repeatable; several keep a reduced index); default the host's", collect)
    .option('-f, --format <oci|v2s2>', 'convert manifests to OCI or Docker v2s2 (digests change, diff_ids do not)')
    .option('--preserve-digests', 'fail instead of making any change that alters a digest')
    .option('--multi-arch <system|all>', 'for an index: the image for this system (default), or all images and the index (= --all)')
    .option('--override-arch <arch>', "choose the image for this architecture instead of the host's")
    .option('--override-os <os>', "choose the image for this OS instead of the host's")
    .option('--override-variant <variant>', 'choose the image for this architecture variant')
    .option('--dest-compress', 'compress uncompressed layers for dir: too (oci:, oci-archive: and docker:// always do)')
    .option('--dest-compress-format <gzip|zstd>', 'compression of the layers the destination compresses; others are recompressed (default gzip)')
    .option('--dest-compress-level <n>', 'compression level (gzip 1-9, zstd -7..22)')
    .option('--dest-decompress', 'store every layer uncompressed, on any destination')
    .option('--retry-times <n>', 'retries of a failed registry request (default 4)')
    .option('--remove-signatures', 'copy no signatures (Lading copies none unless --referrers, which this excludes)')
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
      const [{ LadingError }, { parseReference }, { copy }, { parsePlatform }, { registryOptionsFromFlags }, { ProgressPrinter, chooseProgressMode }] =
        await Promise.all([
          import('../../errors.js'),
          import('../../transport/reference.js'),
          import('../../copy/copy-references.js'),
          import('../../spec/platform.js'),
          import('../../transport/registry/cli-options.js'),
          import('../progress.js'),
        ])

      const srcRef = parseReference(source)
      const destRef = parseReference(destination)
      if (f.format !== undefined && f.format !== 'oci' && f.format !== 'v2s2')
        throw new LadingError('USAGE', `--format: expected oci or v2s2, got ${JSON.stringify(f.format)}`)
      if (f.progress !== undefined && !['json', 'plain', 'tty'].includes(f.progress))
        throw new LadingError('USAGE', `--progress: expected json, plain or tty, got ${JSON.stringify(f.progress)}`)
      const intFlag = (v: string | undefined, name: string, min: number, max: number): number | undefined => {
        if (v === undefined) return undefined
        const n = Number(v)
        if (!Number.isInteger(n) || n < min || n > max)
          throw new LadingError('USAGE', `${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`)
        return n
      }
      const level = intFlag(f.destCompressLevel, '--dest-compress-level', -7, 22)
      const concurrency = intFlag(f.concurrency, '--concurrency', 1, 64)
      const retryTimes = intFlag(f.retryTimes, '--retry-times', 0, 100)
      if (f.destDecompress && (f.destCompress || f.destCompressFormat !== undefined || level !== undefined)) {
        throw new LadingError(
          'USAGE',
          `--dest-decompress and ${f.destCompress ? '--dest-compress' : f.destCompressFormat !== undefined ? '--dest-compress-format' : '--dest-compress-level'} cannot be combined`,
        )
      }
      if (f.removeSignatures && f.referrers)
        throw new LadingError('USAGE', '--remove-signatures and --referrers cannot be combined (referrers include signatures)')
      if (f.multiArch !== undefined && !['system', 'all'].includes(f.multiArch)) {
        // index-only (the index without its images) would leave an oci: layout that references
        // manifests it does not hold: refused rather than half done.
        throw new LadingError(
          'USAGE',
          `--multi-arch: expected system or all, got ${JSON.stringify(f.multiArch)}${f.multiArch === 'index-only' ? ' (index-only is not supported: the destination would reference images it does not hold)' : ''}`,
        )
      }
      const all = f.all === true || f.multiArch === 'all'
      const override = f.overrideArch !== undefined || f.overrideOs !== undefined || f.overrideVariant !== undefined
      if (all && (f.platform?.length || override))
        throw new LadingError('USAGE', `${f.all ? '--all' : '--multi-arch all'} and ${f.platform?.length ? '--platform' : '--override-*'} cannot be combined`)
      if (override && f.platform?.length) throw new LadingError('USAGE', '--platform and --override-arch/--override-os/--override-variant cannot be combined')
      const tmp = f.tmpdir !== undefined ? { tmpDir: f.tmpdir } : {}
      const retry = retryTimes !== undefined ? { retry: { attempts: retryTimes + 1 } } : {}
      const srcOpts = {
        ...registryOptionsFromFlags({ tlsVerify: f.srcTlsVerify, certDir: f.srcCertDir, creds: f.srcCreds, authfile: f.srcAuthfile ?? f.authfile }, 'src-'),
        ...tmp,
        ...retry,
      }
      const destOpts = {
        ...registryOptionsFromFlags(
          { tlsVerify: f.destTlsVerify, certDir: f.destCertDir, creds: f.destCreds, authfile: f.destAuthfile ?? f.authfile },
          'dest-',
        ),
        ...tmp,
        ...retry,
      }

      // Every flag is checked before anything is opened: a usage error never touches the source.
      let destCompressFormat: 'gzip' | 'zstd' | undefined
      if (f.destCompressFormat !== undefined) {
        const c = (await import('../../io/compression.js')).parseCompression(f.destCompressFormat)
        if (c === 'none') throw new LadingError('USAGE', '--dest-compress-format: expected gzip or zstd, got "none" (use --dest-decompress)')
        destCompressFormat = c
      }
      let platforms = f.platform?.length ? f.platform.map(parsePlatform) : undefined
      if (override) {
        // skopeo's --override-*: the host's platform with the given parts replaced.
        const { hostPlatform } = await import('../../spec/platform.js')
        const host = hostPlatform()
        const arch = f.overrideArch ?? host.architecture
        const variant = f.overrideVariant ?? (f.overrideArch === undefined ? host.variant : undefined)
        platforms = [{ os: f.overrideOs ?? host.os, architecture: arch, ...(variant !== undefined ? { variant } : {}) }]
      }
      const printer = new ProgressPrinter(chooseProgressMode(f))
      // SIGINT/SIGTERM (src/cli/run.ts, through src/io/cleanup.ts's hooks): the signal aborts the
      // copy, which closes both ends (removing what the destination made); the hook waits for
      // that, then the run's handler reports and exits.
      const { onInterrupt } = await import('../../io/cleanup.js')
      const ac = new AbortController()
      let running: Promise<unknown> | undefined
      const disposeInterrupt = onInterrupt(async () => {
        printer.finish()
        ac.abort()
        await running?.catch(() => {})
      })
      try {
        const copying = copy(srcRef, destRef, {
          signal: ac.signal,
          sourceOptions: srcOpts,
          destinationOptions: destOpts,
          ...(all ? { all: true } : {}),
          ...(platforms ? { platforms } : {}),
          ...(f.format ? { format: f.format as 'oci' | 'v2s2' } : {}),
          ...(f.preserveDigests ? { preserveDigests: true } : {}),
          ...(f.destDecompress ? { destCompress: 'none' as const } : {}),
          ...(destCompressFormat !== undefined ? { destCompressFormat } : {}),
          ...(f.destCompress ? { compressLayers: true } : {}),
          ...(level !== undefined ? { destCompressLevel: level } : {}),
          ...(f.additionalTag?.length ? { additionalTags: f.additionalTag } : {}),
          ...(f.digestfile !== undefined ? { digestFile: f.digestfile } : {}),
          ...(f.referrers ? { referrers: true } : {}),
          ...(concurrency !== undefined ? { concurrency } : {}),
          onProgress: printer.onEvent,
        })
        running = copying
        const result = await copying
        const { blobs } = result
        printer.finish(
          `Copied ${result.digest}: ${blobs.copied} blob(s) sent, ${blobs.existed} already there${result.referrers ? `, ${result.referrers} referrer(s)` : ''}`,
        )
        if (chooseProgressMode(f) === 'json')
          process.stderr.write(JSON.stringify({ type: 'done', digest: result.digest, mediaType: result.mediaType, size: result.size, blobs }) + '\n')
      } catch (e) {
        printer.finish()
        throw e
      } finally {
        disposeInterrupt()
      }
    })
}
