/** `lading init --layout DIR`: create an empty OCI image layout (idempotent on an existing one). */
import type { Command } from 'commander'
import { usage } from '../util.js'

export function register(program: Command): void {
  program
    .command('init')
    .description('create a new, empty OCI image layout (idempotent on an existing layout)')
    .requiredOption('--layout <dir>', 'the layout directory to create')
    .action(async (opts: { layout: string }) => {
      if (!opts.layout) throw usage('--layout must not be empty')
      const { Layout } = await import('../../store/layout.js')
      await Layout.init(opts.layout)
    })
}
