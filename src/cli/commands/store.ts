/** `lading store gc`: garbage collection of the local image store (src/run/gc.ts). */
import type { Command } from 'commander'
import { addStoreOption, openStore, type StoreFlag } from '../store-options.js'
import { formatBytes } from '../util.js'

export function register(program: Command): void {
  const store = program.command('store').description('the local image store of lading run')
  addStoreOption(store.command('gc').description('remove blobs and unpacked layers no image or container uses (never those of existing containers)')).action(
    async (f: StoreFlag) => {
      const { storeGc } = await import('../../run/gc.js')
      const r = await storeGc(await openStore(f))
      const bytes = r.blobs.removed.reduce((n, b) => n + b.size, 0)
      process.stdout.write(
        `removed ${r.blobs.removed.length} blob(s) (${formatBytes(bytes)}), ${r.layersRemoved.length} unpacked layer(s), ${r.tempDirsRemoved + r.blobs.tempFilesRemoved} stale temporary item(s)\n`,
      )
    },
  )
}
