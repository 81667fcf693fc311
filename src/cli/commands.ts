/**
 * The command list, in the order `lading --help` shows it. Each entry names a command (and its
 * aliases) and loads its module from ./commands/ on demand: `lading ls` imports only ls.ts, so
 * start-up stays small however many commands there are (`lading ls` and `lading stat` must finish
 * in well under 150 ms). Help and unknown commands load every module.
 * Add a command by adding one entry; its module exports `register(program)`.
 */
import type { Command } from 'commander'

export type Register = (program: Command) => void

export interface CommandEntry {
  names: readonly string[]
  load: () => Promise<{ register: Register }>
}

export const commands: readonly CommandEntry[] = [
  { names: ['init'], load: () => import('./commands/init.js') },
  { names: ['new'], load: () => import('./commands/new.js') },
  { names: ['ls', 'list'], load: () => import('./commands/ls.js') },
  { names: ['tag'], load: () => import('./commands/tag.js') },
  { names: ['rm', 'remove'], load: () => import('./commands/rm.js') },
  { names: ['gc'], load: () => import('./commands/gc.js') },
  { names: ['config'], load: () => import('./commands/config.js') },
  { names: ['stat'], load: () => import('./commands/stat.js') },
  { names: ['inspect'], load: () => import('./commands/inspect.js') },
  { names: ['cat'], load: () => import('./commands/cat.js') },
  { names: ['validate'], load: () => import('./commands/validate.js') },
  { names: ['unpack'], load: () => import('./commands/unpack.js') },
  { names: ['repack'], load: () => import('./commands/repack.js') },
  { names: ['insert'], load: () => import('./commands/insert.js') },
  { names: ['raw'], load: () => import('./commands/raw.js') },
  { names: ['copy'], load: () => import('./commands/copy.js') },
  { names: ['list-tags'], load: () => import('./commands/list-tags.js') },
  { names: ['delete'], load: () => import('./commands/delete.js') },
  { names: ['login'], load: () => import('./commands/login.js') },
  { names: ['logout'], load: () => import('./commands/logout.js') },
  { names: ['manifest-digest'], load: () => import('./commands/manifest-digest.js') },
  { names: ['serve'], load: () => import('./commands/serve.js') },
  { names: ['run'], load: () => import('./commands/run.js') },
  { names: ['pull'], load: () => import('./commands/pull.js') },
  { names: ['push'], load: () => import('./commands/push.js') },
  { names: ['images'], load: () => import('./commands/images.js') },
  { names: ['rmi'], load: () => import('./commands/rmi.js') },
  { names: ['ps'], load: () => import('./commands/ps.js') },
  { names: ['stop'], load: () => import('./commands/stop.js') },
  { names: ['logs'], load: () => import('./commands/logs.js') },
  { names: ['commit'], load: () => import('./commands/commit.js') },
  { names: ['container'], load: () => import('./commands/container.js') },
  { names: ['image'], load: () => import('./commands/image.js') },
  { names: ['store'], load: () => import('./commands/store.js') },
  { names: ['build'], load: () => import('./commands/build.js') },
]

/** The entries to load for these arguments: the named command's alone when argv names one. */
export function commandsFor(args: readonly string[]): readonly CommandEntry[] {
  const name = args.find((a) => !a.startsWith('-'))
  const hit = name === undefined ? undefined : commands.find((c) => c.names.includes(name))
  return hit ? [hit] : commands
}
