/**
 * `lading container ls|rm|stop|logs|commit`: container verbs under one noun, as podman has them.
 * `rm` lives only here: `lading rm` removes a tag from a layout (umoci's verb) and keeps doing so.
 */
import type { Command } from 'commander'
import { addStoreOption, openStore, type StoreFlag } from '../store-options.js'
import { defineCommit } from './commit.js'
import { defineLogs } from './logs.js'
import { definePs } from './ps.js'
import { defineStop } from './stop.js'

export function register(program: Command): void {
  const c = program.command('container').description('containers of the local store: ls, rm, stop, logs, commit')
  definePs(c.command('ls').alias('ps'))
  defineStop(c.command('stop'))
  defineLogs(c.command('logs'))
  defineCommit(c.command('commit'))
  addStoreOption(
    c
      .command('rm')
      .description('remove containers: their writable layer, mount and runc state')
      .argument('<containers...>', 'names or ids')
      .option('-f, --force', 'kill running containers first'),
  ).action(async (names: string[], f: StoreFlag & { force?: boolean }) => {
    const { findContainer, removeContainer } = await import('../../run/containers.js')
    const store = await openStore(f)
    for (const n of names) {
      const rec = await findContainer(store, n)
      await removeContainer(store, rec, { force: f.force ?? false })
      process.stdout.write(`${rec.id}\n`)
    }
  })
}
