import type { Command } from 'commander'
import { LadingError } from '../../errors.js'
import { addHistoryOptions, historyFromOptions } from '../image-options.js'
import { collect, parseImageArg } from '../util.js'

type Opts = Record<string, unknown> & { image: string; tag?: string; clear?: string[] }

export function register(program: Command): void {
  const cmd = program
    .command('config')
    .description('change the configuration of an image, writing a new config and manifest (like umoci config)')
    .requiredOption('--image <dir[:tag]>', 'the image to change, DIR[:TAG] (tag defaults to latest)')
    .option('--tag <newtag>', "save the result under this tag instead of moving --image's tag")
    .option('--config.user <user>', 'user[:group] the process runs as')
    .option('--config.exposedports <port>', 'expose PORT[/tcp|udp|sctp] (repeatable)', collect)
    .option('--config.env <key=value>', 'set an environment variable (repeatable)', collect)
    .option('--config.entrypoint <arg>', 'entrypoint argument; all given replace the entrypoint (repeatable)', collect)
    .option('--config.cmd <arg>', 'cmd argument; all given replace the cmd (repeatable)', collect)
    .option('--config.volume <path>', 'add a volume (repeatable)', collect)
    .option('--config.label <key=value>', 'set a label (repeatable)', collect)
    .option('--config.workingdir <dir>', 'working directory')
    .option('--config.stopsignal <signal>', 'stop signal')
    .option('--created <date>', 'image creation time (RFC 3339)')
    .option('--author <author>', 'image author')
    .option('--platform.os <os>', 'operating system')
    .option('--platform.arch <arch>', 'architecture')
    .option('--platform.variant <variant>', 'architecture variant ("" removes it)')
    .option('--os <os>', 'alias of --platform.os (umoci 0.4 spelling)')
    .option('--architecture <arch>', 'alias of --platform.arch (umoci 0.4 spelling)')
    .option('--manifest.annotation <key=value>', 'set a manifest annotation (repeatable)', collect)
    .option(
      '--clear <field>',
      'clear a field first: config.labels, config.volume, config.env, config.exposedports, config.entrypoint, config.cmd, manifest.annotations (repeatable)',
      collect,
    )
  addHistoryOptions(cmd).action(async (opts: Opts) => {
    const { dir, tag } = parseImageArg(opts.image)
    const { Layout } = await import('../../store/layout.js')
    const { resolveImage } = await import('../../store/resolve.js')
    const { writeImage } = await import('../../store/image.js')
    const { editConfig, parseAnnotations } = await import('../../spec/config-edit.js')
    const layout = await Layout.open(dir)
    const img = await resolveImage(layout, { tag: tag! }, 'any')
    if (img.path.length > 1) {
      throw new LadingError(
        'UNSUPPORTED',
        `${dir}:${tag}: names an index of ${img.path.length - 1 > 1 ? 'nested indexes' : 'several images'}; lading config edits one image manifest (copy the platform you want out first)`,
      )
    }
    const s = (k: string) => opts[k] as string | undefined
    const a = (k: string) => opts[k] as string[] | undefined
    const clear = opts.clear ?? []
    const config = editConfig(img.config, {
      user: s('config.user'),
      exposedPorts: a('config.exposedports'),
      env: a('config.env'),
      entrypoint: a('config.entrypoint'),
      cmd: a('config.cmd'),
      volumes: a('config.volume'),
      labels: a('config.label'),
      workingDir: s('config.workingdir'),
      stopSignal: s('config.stopsignal'),
      created: s('created'),
      author: s('author'),
      os: s('platform.os') ?? s('os'),
      architecture: s('platform.arch') ?? s('architecture'),
      variant: s('platform.variant'),
      clear,
      history: historyFromOptions(opts, { createdBy: 'lading config', author: s('author') ?? img.config.author, emptyLayer: true }),
    })
    const manifest = structuredClone(img.manifest)
    if (clear.includes('manifest.annotations')) delete manifest.annotations
    const added = parseAnnotations(a('manifest.annotation'))
    if (Object.keys(added).length) manifest.annotations = { ...(manifest.annotations ?? {}), ...added }
    const newTag = opts.tag ?? tag!
    const desc = await writeImage(layout, { config, manifest, tag: newTag })
    process.stdout.write(`${dir}:${newTag} ${desc.digest}\n`)
  })
}
