/**
 * The `--store DIR` option of the local-store commands (run, pull, images, ps, ...), and opening
 * the store it names (default: run/store.ts defaultStoreDir, from this process's user and env).
 */
import type { Command } from 'commander'

export interface StoreFlag {
  store?: string
}

export function addStoreOption(cmd: Command): Command {
  return cmd.option('--store <dir>', 'the local image store (default: $XDG_DATA_HOME/lading, /var/lib/lading for root)')
}

export async function openStore(f: StoreFlag) {
  const { LocalStore, defaultStoreDir } = await import('../run/store.js')
  return LocalStore.open(f.store ?? defaultStoreDir())
}

/** Print the warnings of a store operation on stderr, one line each. */
export function warn(msg: string): void {
  process.stderr.write(`lading: warning: ${msg}\n`)
}
