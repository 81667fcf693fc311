/**
 * The command list. Each entry is a module in ./commands/ exporting `register(program)`.
 * Add a command by adding one import and one array entry; keep this file a plain list.
 */
import type { Command } from 'commander'
import { register as newCmd } from './commands/new.js'
import { register as configCmd } from './commands/config.js'
import { register as statCmd } from './commands/stat.js'
import { register as inspectCmd } from './commands/inspect.js'
import { register as catCmd } from './commands/cat.js'
import { register as validateCmd } from './commands/validate.js'

export type Register = (program: Command) => void

export const commands: Register[] = [
  newCmd,
  configCmd,
  statCmd,
  inspectCmd,
  catCmd,
  validateCmd,
]
