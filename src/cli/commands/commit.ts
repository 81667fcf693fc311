/** `lading commit CONTAINER IMAGE` (also `lading container commit`): the container's changes as a new image. */
import type { Command } from 'commander'
import { addStoreOption, openStore, type StoreFlag } from '../store-options.js'

export function defineCommit(cmd: Command): Command {
  return addStoreOption(
    cmd
      .description("store a container's changes as a new layer on its image, under a new name (a short name is localhost/NAME)")
      .argument('<container>', 'name or id')
      .argument('<image>', "the new image's name")
      .option('-a, --author <author>', 'author of the history entry')
      .option('-m, --message <text>', 'comment of the history entry'),
  ).action(async (name: string, image: string, f: StoreFlag & { author?: string; message?: string }) => {
    const [{ findContainer }, { commitContainer }] = await Promise.all([import('../../run/containers.js'), import('../../run/commit.js')])
    const store = await openStore(f)
    const c = await findContainer(store, name)
    const r = await commitContainer(store, c, image, {
      ...(f.author !== undefined ? { author: f.author } : {}),
      ...(f.message !== undefined ? { message: f.message } : {}),
    })
    process.stdout.write(`${r.name} ${r.manifest?.digest ?? ''}\n`)
  })
}

export function register(program: Command): void {
  defineCommit(program.command('commit'))
}
