import type { Command } from 'commander'
import { collect, openImageArg, whileInterruptible } from '../util.js'
import { unpackOptions, parseIdMap, withUnpackOptions, type UnpackCliOpts } from './unpack.js'

export function register(program: Command): void {
  const raw = program.command('raw').description('low-level bundle operations (like umoci raw)')
  withUnpackOptions(
    raw
      .command('unpack')
      .description('unpack only the root filesystem of an image into ROOTFS (no config.json, no bundle state)')
      .argument('<rootfs>', 'directory to create (must be absent or empty)'),
    'unpack as an unprivileged user: no chown, no devices',
  ).action(async (rootfs: string, opts: UnpackCliOpts) => {
    const { unpackRootfs } = await import('../../bundle/unpack.js')
    const r = await whileInterruptible((signal) => unpackOptions(opts).then((o) => unpackRootfs(rootfs, { ...o, signal })), `raw unpack into ${rootfs}`)
    process.stdout.write(`unpacked ${r.image.manifestDescriptor.digest} (${r.layers} layer${r.layers === 1 ? '' : 's'}) into ${rootfs}\n`)
  })
  raw
    .command('runtime-config')
    .alias('config')
    .description('write the runtime config.json for an image (image-spec conversion.md)')
    .requiredOption('--image <dir[:tag]>', 'the image, DIR[:TAG] or DIR@DIGEST (tag defaults to latest)')
    .argument('<config>', 'file to write (e.g. bundle/config.json)')
    .option('--rootfs <dir>', 'unpacked rootfs to resolve Config.User names from (its /etc/passwd and /etc/group)')
    .option('--platform <os/arch[/variant]>', 'image to pick from an index (default: this machine)')
    .option('--rootless', 'the rootless variant (user namespace, no network namespace)')
    .option('--uid-map <c:h:s>', 'user namespace uid mapping (repeatable)', collect)
    .option('--gid-map <c:h:s>', 'user namespace gid mapping (repeatable)', collect)
    .action(async (file: string, opts: UnpackCliOpts & { rootfs?: string }) => {
      const [{ writeRuntimeConfig }, { resolveImage }] = await Promise.all([import('../../bundle/unpack.js'), import('../../store/resolve.js')])
      const { parsePlatform } = await import('../../spec/platform.js')
      const platform = opts.platform === undefined ? undefined : opts.platform === 'any' ? ('any' as const) : parsePlatform(opts.platform)
      const { layout, image: selector } = await openImageArg(opts.image)
      const image = await resolveImage(layout, selector, platform)
      const o: Parameters<typeof writeRuntimeConfig>[2] = { rootless: opts.rootless ?? false }
      if (opts.rootfs !== undefined) o.rootfs = opts.rootfs
      if (opts.uidMap?.length) o.uidMap = opts.uidMap.map((s) => parseIdMap(s, '--uid-map'))
      if (opts.gidMap?.length) o.gidMap = opts.gidMap.map((s) => parseIdMap(s, '--gid-map'))
      await writeRuntimeConfig(image, file, o)
    })
}
