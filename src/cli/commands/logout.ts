/**
 * `lading logout REGISTRY` / `lading logout --all`: remove stored credentials from the auth
 * file lading login writes (atomic rewrite, mode 0600; other entries and fields are kept).
 */
import type { Command } from 'commander'

export function register(program: Command): void {
  program
    .command('logout')
    .description('remove the stored credentials of a registry (or --all)')
    .argument('[registry]', 'registry host[:port]')
    .option('-a, --all', 'remove the credentials of every registry')
    .option('--authfile <file>', 'auth file to modify')
    .action(async (registryArg: string | undefined, opts: { all?: boolean; authfile?: string }) => {
      const { LadingError } = await import('../../errors.js')
      const { normalizeAuthKey } = await import('../../transport/registry/names.js')
      const { defaultAuthFilePath, removeCredentials, removeAllCredentials } = await import('../../transport/auth/auth-file.js')
      const file = defaultAuthFilePath(opts.authfile)
      if (opts.all) {
        if (registryArg) throw new LadingError('USAGE', 'logout: give a registry or --all, not both')
        await removeAllCredentials(file)
        process.stdout.write('Removed login credentials for all registries\n')
        return
      }
      if (!registryArg) throw new LadingError('USAGE', 'logout: a registry (or --all) is required')
      const registry = normalizeAuthKey(registryArg)
      if (!(await removeCredentials(file, registry))) throw new LadingError('NOT_FOUND', `logout: not logged in to ${registry} (in ${file})`)
      process.stdout.write(`Removed login credentials for ${registry}\n`)
    })
}
