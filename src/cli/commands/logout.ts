/**
 * `lading logout REGISTRY` / `lading logout --all`: remove stored credentials from the auth
 * file lading login writes (atomic rewrite, mode 0600; other entries and fields are kept), and
 * from registries.conf's other `credential-helpers` (`erase`; with --all, `list` then `erase`).
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
      const { normalizeAuthKey } = await import('../../transport/docker-reference.js')
      const { defaultAuthFilePath, removeCredentials, removeAllCredentials } = await import('../../transport/auth/auth-file.js')
      const { AUTH_FILES_HELPER, credentialHelperList } = await import('../../transport/auth/credentials.js')
      const helperModule = (): Promise<typeof import('../../transport/auth/credential-helper.js')> => import('../../transport/auth/credential-helper.js')
      const file = defaultAuthFilePath(opts.authfile)
      // From every one of registries.conf's credential helpers (by default only the auth file),
      // as containers/image does.
      const helpers = await credentialHelperList()
      // Every helper is tried even when one fails (as containers/image); the failures are
      // reported together at the end, and a helper that is not installed holds nothing.
      const failures: string[] = []
      const each = async (fn: () => Promise<void>): Promise<void> => {
        try {
          await fn()
        } catch (e) {
          if (helpers.length === 1) throw e
          failures.push((e as Error).message)
        }
      }
      const notInstalled = (e: unknown): boolean => e instanceof LadingError && e.code === 'NOT_FOUND'
      if (opts.all) {
        if (registryArg) throw new LadingError('USAGE', 'logout: give a registry or --all, not both')
        for (const helper of helpers) {
          await each(async () => {
            if (helper === AUTH_FILES_HELPER) {
              await removeAllCredentials(file)
              return
            }
            const h = await helperModule()
            let servers: string[]
            try {
              servers = await h.helperList(helper)
            } catch (e) {
              if (notInstalled(e)) return
              throw e
            }
            for (const server of servers) await h.helperErase(helper, server)
          })
        }
        if (failures.length) throw new LadingError('UNAUTHORIZED', `logout --all: ${failures.join('; ')}`)
        process.stdout.write('Removed login credentials for all registries\n')
        return
      }
      if (!registryArg) throw new LadingError('USAGE', 'logout: a registry (or --all) is required')
      const registry = normalizeAuthKey(registryArg)
      let removed = false
      for (const helper of helpers) {
        await each(async () => {
          if (helper === AUTH_FILES_HELPER) removed = (await removeCredentials(file, registry)) || removed
          else removed = (await (await helperModule()).helperErase(helper, registry)) || removed
        })
      }
      if (failures.length) throw new LadingError('UNAUTHORIZED', `logout: ${registry}: ${failures.join('; ')}`)
      const where = helpers.map((h) => (h === AUTH_FILES_HELPER ? file : `docker-credential-${h}`)).join(', ')
      if (!removed) throw new LadingError('NOT_FOUND', `logout: not logged in to ${registry} (in ${where})`)
      process.stdout.write(`Removed login credentials for ${registry}\n`)
    })
}
