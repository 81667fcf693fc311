/** `lading ps` (also `lading container ls`): the containers of the local store, states from runc. */
import type { Command } from 'commander'
import { addStoreOption, openStore, type StoreFlag } from '../store-options.js'
import { printJson, writeOut } from '../util.js'
import { formatTable } from './images.js'

export function definePs(cmd: Command): Command {
  return addStoreOption(
    cmd
      .description('list containers (running ones; -a for all)')
      .option('-a, --all', 'also containers that are not running')
      .option('-q, --quiet', 'print only the ids')
      .option('--json', 'print JSON'),
  ).action(async (f: StoreFlag & { all?: boolean; quiet?: boolean; json?: boolean }) => {
    const { listContainers, containerStatus } = await import('../../run/containers.js')
    const store = await openStore(f)
    const rows = []
    for (const c of await listContainers(store)) {
      const { status, state } = containerStatus(store, c)
      if (!f.all && status !== 'running' && status !== 'paused') continue
      rows.push({
        id: c.id,
        name: c.name,
        image: c.image,
        imageId: c.imageId,
        command: c.command,
        created: c.created,
        status,
        ...(state && status !== 'exited' ? { pid: state.pid } : {}),
        rootfs: c.rootfs,
      })
    }
    if (f.json) return printJson(rows)
    if (f.quiet) return writeOut(rows.map((r) => `${r.id.slice(0, 12)}\n`).join(''))
    await writeOut(
      formatTable([
        ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'NAMES'],
        ...rows.map((r) => [
          r.id.slice(0, 12),
          r.image,
          JSON.stringify(r.command.join(' ').slice(0, 40)),
          r.created.slice(0, 19).replace('T', ' '),
          r.status,
          r.name,
        ]),
      ]),
    )
  })
}

export function register(program: Command): void {
  definePs(program.command('ps'))
}
