/** `lading logs CONTAINER` (also `lading container logs`): the output of a detached container. */
import type { Command } from 'commander'
import { addStoreOption, openStore, type StoreFlag } from '../store-options.js'

export function defineLogs(cmd: Command): Command {
  return addStoreOption(
    cmd.description('print the output (stdout and stderr, interleaved) of a container started with -d').argument('<container>', 'name or id'),
  ).action(async (name: string, f: StoreFlag) => {
    const [{ findContainer, containerDir, LOG_FILE }, { LadingError, isErrno }, fs, { pipeline }] = await Promise.all([
      import('../../run/containers.js'),
      import('../../errors.js'),
      import('node:fs'),
      import('node:stream/promises'),
    ])
    const store = await openStore(f)
    const c = await findContainer(store, name)
    const file = `${containerDir(store, c.id)}/${LOG_FILE}`
    const stream = fs.createReadStream(file)
    try {
      await pipeline(stream, process.stdout, { end: false })
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new LadingError('NOT_FOUND', `container ${c.name} has no log: it ran in the foreground, its output went to the terminal`)
      throw e
    }
  })
}

export function register(program: Command): void {
  defineLogs(program.command('logs'))
}
