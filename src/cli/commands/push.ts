/** `lading push IMAGE DEST` (also `lading image push`): copy a stored image anywhere. */
import type { Command } from 'commander'
import { addStoreOption, openStore, type StoreFlag } from '../store-options.js'
import { addRegistryOptions } from './pull.js'

interface PushFlags extends StoreFlag {
  quiet?: boolean
  tlsVerify?: string | boolean
  certDir?: string
  creds?: string
  authfile?: string
}

export function definePush(cmd: Command): Command {
  return addRegistryOptions(
    addStoreOption(
      cmd
        .description('copy an image of the local store to a registry (NAME or docker://NAME) or any transport reference')
        .argument('<image>', 'the stored image (name or id)')
        .argument('<destination>', 'where to: registry/repo:tag, docker://…, oci:DIR:TAG, docker-archive:FILE, …')
        .option('-q, --quiet', 'print nothing but errors'),
    ),
  ).action(async (image: string, destination: string, f: PushFlags) => {
    const [{ pushImage }, { registryOptionsFromFlags }, { ProgressPrinter, chooseProgressMode }] = await Promise.all([
      import('../../run/images.js'),
      import('../../transport/registry/cli-options.js'),
      import('../progress.js'),
    ])
    const store = await openStore(f)
    const found = await store.findImage(image)
    if (!found) throw store.notFound(image)
    const printer = new ProgressPrinter(chooseProgressMode(f))
    try {
      const r = await pushImage(store, found, destination, {
        ...registryOptionsFromFlags({ tlsVerify: f.tlsVerify, certDir: f.certDir, creds: f.creds, authfile: f.authfile }),
        onProgress: printer.onEvent,
      })
      printer.finish(f.quiet ? undefined : `Pushed ${found.name} as ${r.digest}`)
    } catch (e) {
      printer.finish()
      throw e
    }
  })
}

export function register(program: Command): void {
  definePush(program.command('push'))
}
