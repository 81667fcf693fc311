/** `lading rmi IMAGE...` (also `lading image rm`): remove images from the local store. */
import type { Command } from 'commander'
import { addStoreOption, openStore, type StoreFlag } from '../store-options.js'

export function defineRmi(cmd: Command): Command {
  return addStoreOption(
    cmd
      .description('remove images (names) from the local store, then what nothing uses any more (blobs, unpacked layers)')
      .argument('<images...>', 'names or image ids')
      .option('-f, --force', 'remove the name even if containers were made from the image (they keep it)'),
  ).action(async (images: string[], f: StoreFlag & { force?: boolean }) => {
    const [{ LadingError }, { listContainers }, { storeGc }] = await Promise.all([
      import('../../errors.js'),
      import('../../run/containers.js'),
      import('../../run/gc.js'),
    ])
    const store = await openStore(f)
    for (const input of images) {
      const found = await store.findImage(input)
      if (!found) throw store.notFound(input)
      if (!f.force) {
        const users = (await listContainers(store)).filter((c) => c.image === found.name || c.manifest.digest === found.manifest.digest)
        if (users.length > 0)
          throw new LadingError(
            'CONFLICT',
            `image ${found.name} is used by container(s) ${users.map((c) => c.name).join(', ')}: remove them first, or use --force`,
          )
      }
      await store.untag(found.name)
      process.stdout.write(`Untagged: ${found.name}\n`)
    }
    const r = await storeGc(store)
    if (r.layersRemoved.length > 0 || r.blobs.removed.length > 0)
      process.stdout.write(`Deleted: ${r.blobs.removed.length} blob(s), ${r.layersRemoved.length} unpacked layer(s)\n`)
  })
}

export function register(program: Command): void {
  defineRmi(program.command('rmi'))
}
