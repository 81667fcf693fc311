/**
 * The command list. Each entry is a module in ./commands/ exporting `register(program)`.
 * Add a command by adding one import and one array entry; keep this file a plain list.
 */
import type { Command } from 'commander'

export type Register = (program: Command) => void

export const commands: Register[] = [
]
