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
import { register as initCmd } from './commands/init.js'
import { register as lsCmd } from './commands/ls.js'
import { register as tagCmd } from './commands/tag.js'
import { register as rmCmd } from './commands/rm.js'
import { register as gcCmd } from './commands/gc.js'
import { register as validateCmd } from './commands/validate.js'
import { register as unpackCmd } from './commands/unpack.js'
import { register as repackCmd } from './commands/repack.js'
import { register as insertCmd } from './commands/insert.js'
import { register as rawCmd } from './commands/raw.js'
import { register as loginCmd } from './commands/login.js'
import { register as logoutCmd } from './commands/logout.js'
import { register as listTagsCmd } from './commands/list-tags.js'
import { register as deleteCmd } from './commands/delete.js'
import { register as copyCmd } from './commands/copy.js'
import { register as manifestDigestCmd } from './commands/manifest-digest.js'

export type Register = (program: Command) => void

export const commands: Register[] = [
  newCmd,
  configCmd,
  statCmd,
  inspectCmd,
  catCmd,
  initCmd,
  lsCmd,
  tagCmd,
  rmCmd,
  gcCmd,
  validateCmd,
  unpackCmd,
  repackCmd,
  insertCmd,
  rawCmd,
  loginCmd,
  logoutCmd,
  listTagsCmd,
  deleteCmd,
  copyCmd,
  manifestDigestCmd,
]
