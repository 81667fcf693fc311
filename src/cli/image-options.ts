/**
 * Options shared by commands that write a new image version (config, repack, insert):
 * the history entry they record, as umoci spells the flags.
 */
import type { Command } from 'commander'
import type { History } from '../spec/types.js'
import { assertRfc3339 } from '../spec/config-edit.js'

export function addHistoryOptions(cmd: Command): Command {
  return cmd
    .option('--no-history', 'do not record a history entry')
    .option('--history.author <author>', 'author of the history entry (default: the image author)')
    .option('--history.comment <comment>', 'comment of the history entry')
    .option('--history.created <date>', 'created time of the history entry (RFC 3339; default: now)')
    .option('--history.created_by <text>', 'created_by of the history entry')
}

/** The history entry the options describe, or undefined with --no-history. */
export function historyFromOptions(
  opts: Record<string, unknown>,
  defaults: { createdBy: string; author?: string | undefined; emptyLayer: boolean },
): History | undefined {
  if (opts.history === false) return undefined
  const h: History = {
    created: opts['history.created'] !== undefined ? assertRfc3339(String(opts['history.created']), '--history.created') : new Date().toISOString(),
    created_by: (opts['history.created_by'] as string | undefined) ?? defaults.createdBy,
  }
  const author = (opts['history.author'] as string | undefined) ?? defaults.author
  if (author !== undefined) h.author = author
  if (opts['history.comment'] !== undefined) h.comment = String(opts['history.comment'])
  if (defaults.emptyLayer) h.empty_layer = true
  return h
}
