import type { Command } from 'commander'
import { PROGRESS_HELP, progressFor } from '../progress.js'
import { collect, openImageArg, usage, whileInterruptible } from '../util.js'

/** umoci's `--uid-map` syntax: `container:host:size` (all non-negative integers, size >= 1). */
export function parseIdMap(s: string, flag: string): { containerId: number; hostId: number; size: number } {
  const m = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/.exec(s)
  if (!m) throw usage(`${flag} ${JSON.stringify(s)}: expected CONTAINER:HOST:SIZE (e.g. 0:1000:1)`)
  const [containerId, hostId, size] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (size < 1 || containerId + size > 2 ** 32 || hostId + size > 2 ** 32) throw usage(`${flag} ${JSON.stringify(s)}: range outside 0..2^32-1 or empty`)
  return { containerId, hostId, size }
}

export interface UnpackCliOpts {
  progress?: string
  image: string
  platform?: string
  rootless?: boolean
  uidMap?: string[]
  gidMap?: string[]
  verifyDiffIds?: boolean
  keepDirlinks?: boolean
}

/** The shared part of `unpack` and `raw unpack`: image, platform, rootless and id mappings. */
export async function unpackOptions(opts: UnpackCliOpts) {
  const { parsePlatform } = await import('../../spec/platform.js')
  const o: import('../../bundle/unpack.js').UnpackOptions = {
    ...(await openImageArg(opts.image)),
    onWarning: (msg: string) => {
      process.stderr.write(`lading: warning: ${msg}\n`)
    },
  }
  if (opts.platform !== undefined) o.platform = opts.platform === 'any' ? 'any' : parsePlatform(opts.platform)
  if (opts.rootless) o.rootless = true
  if (opts.verifyDiffIds) o.verifyDiffIds = true
  if (opts.keepDirlinks) o.keepDirlinks = true
  if (opts.uidMap?.length) o.uidMap = opts.uidMap.map((s) => parseIdMap(s, '--uid-map'))
  if (opts.gidMap?.length) o.gidMap = opts.gidMap.map((s) => parseIdMap(s, '--gid-map'))
  return o
}

/** The options `unpack` and `raw unpack` share (read by unpackOptions). */
export function withUnpackOptions(cmd: Command, rootlessHelp: string): Command {
  return cmd
    .requiredOption('--image <dir[:tag]>', 'the image, DIR[:TAG] or DIR@DIGEST (tag defaults to latest)')
    .option('--progress <mode>', PROGRESS_HELP)
    .option('--platform <os/arch[/variant]>', 'image to pick from an index (default: this machine; "any": the first)')
    .option('--rootless', rootlessHelp)
    .option('--uid-map <c:h:s>', 'map container uids to host uids, umoci syntax (repeatable)', collect)
    .option('--gid-map <c:h:s>', 'map container gids to host gids, umoci syntax (repeatable)', collect)
    .option('--verify-diff-ids', "also check each uncompressed layer against the config's diff_ids (slower)")
    .option('--keep-dirlinks', "keep symlinks to directories instead of replacing them with a layer's directory (like umoci)")
}

export function register(program: Command): void {
  withUnpackOptions(
    program
      .command('unpack')
      .description('unpack an image into a runtime bundle: BUNDLE/rootfs, BUNDLE/config.json (like umoci unpack)')
      .argument('<bundle>', 'bundle directory to create (must be absent or empty)'),
    'unpack as an unprivileged user: no chown, no devices; config.json with a user namespace',
  ).action(async (bundle: string, opts: UnpackCliOpts) => {
    const { unpackBundle } = await import('../../bundle/unpack.js')
    const printer = progressFor(opts)
    const r = await whileInterruptible(
      (signal) => unpackOptions(opts).then((o) => unpackBundle(bundle, { ...o, signal, ...(printer ? { onProgress: printer.onEvent } : {}) })),
      `unpack into ${bundle}`,
    ).finally(() => printer?.finish())
    process.stdout.write(
      `unpacked ${r.image.manifestDescriptor.digest} (${r.layers} layer${r.layers === 1 ? '' : 's'}, ${r.stats.entries} entries) into ${bundle}\n`,
    )
  })
}
