/** `lading pull IMAGE` (also `lading image pull`): copy an image into the local store. */
import type { Command } from 'commander'
import { addStoreOption, openStore, type StoreFlag } from '../store-options.js'

interface PullFlags extends StoreFlag {
  quiet?: boolean
  tlsVerify?: string | boolean
  certDir?: string
  creds?: string
  authfile?: string
}

/** The registry options of the store commands that read or write registries (pull, push). */
export function addRegistryOptions(cmd: Command): Command {
  return cmd
    .option('--tls-verify [bool]', 'verify TLS; false also allows plain HTTP (default true)')
    .option('--cert-dir <dir>', '*.crt CAs and *.cert/*.key client certificate')
    .option('--creds <user:pass>', 'registry credentials')
    .option('--authfile <file>', 'auth file')
}

export function definePull(cmd: Command): Command {
  return addRegistryOptions(
    addStoreOption(
      cmd
        .description('copy an image into the local store: a name (debian:12 is docker.io/library/debian:12) or any transport reference')
        .argument('<image>', 'the image to pull')
        .option('-q, --quiet', 'print only the image id'),
    ),
  ).action(async (image: string, f: PullFlags) => {
    const [{ pullImage }, { registryOptionsFromFlags }, { ProgressPrinter, chooseProgressMode }] = await Promise.all([
      import('../../run/images.js'),
      import('../../transport/registry/cli-options.js'),
      import('../progress.js'),
    ])
    const store = await openStore(f)
    const printer = new ProgressPrinter(chooseProgressMode(f))
    try {
      const r = await pullImage(store, image, {
        ...registryOptionsFromFlags({ tlsVerify: f.tlsVerify, certDir: f.certDir, creds: f.creds, authfile: f.authfile }),
        onProgress: printer.onEvent,
      })
      printer.finish()
      const found = (await store.listImages()).find((i) => i.name === r.name)
      const id = found ? await store.imageId(found.manifest) : r.copy.digest
      process.stdout.write(f.quiet ? `${id}\n` : `${r.name} ${id}\n`)
    } catch (e) {
      printer.finish()
      throw e
    }
  })
}

export function register(program: Command): void {
  definePull(program.command('pull'))
}
