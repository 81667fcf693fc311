/**
 * `lading login REGISTRY -u USER [-p PASS | --password-stdin]` (else a hidden prompt on a
 * terminal): check the credentials against the registry (basic auth, or a bearer token from
 * its challenge), then store them in the auth file (--authfile, $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json) with an
 * atomic write, mode 0600, or in the first of registries.conf's `credential-helpers` that takes
 * them. Credentials that the registry refuses are never stored.
 */
import type { Command } from 'commander'

export function register(program: Command): void {
  program
    .command('login')
    .description('log in to a registry: verify credentials, then store them in the auth file')
    .argument('<registry>', 'registry host[:port]')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <pass>', 'password (visible to other users of this machine; prefer --password-stdin or the prompt)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates; false also allows plain HTTP (default true)')
    .option('--cert-dir <dir>', 'directory with *.crt CAs and a *.cert/*.key client certificate')
    .option('--authfile <file>', 'auth file to write')
    .action(
      async (
        registryArg: string,
        opts: { username?: string; password?: string; passwordStdin?: boolean; tlsVerify?: string | boolean; certDir?: string; authfile?: string },
      ) => {
        const { LadingError } = await import('../../errors.js')
        const { normalizeAuthKey, isValidRegistryHost } = await import('../../transport/docker-reference.js')
        const { registryOptionsFromFlags } = await import('../../transport/registry/cli-options.js')
        const { RegistryClient } = await import('../../transport/registry/client.js')
        const { defaultAuthFilePath, storeCredentials } = await import('../../transport/auth/auth-file.js')
        const registry = normalizeAuthKey(registryArg)
        if (!isValidRegistryHost(registry)) throw new LadingError('USAGE', `login: invalid registry ${JSON.stringify(registryArg)}: expected host[:port]`)
        if (!opts.username) throw new LadingError('USAGE', 'login: --username is required')
        if (opts.password !== undefined && opts.passwordStdin) throw new LadingError('USAGE', 'login: give --password or --password-stdin, not both')
        let password = opts.password
        if (opts.passwordStdin) {
          const chunks: Buffer[] = []
          let n = 0
          for await (const c of process.stdin) {
            n += (c as Buffer).length
            if (n > 64 * 1024) throw new LadingError('SIZE_LIMIT', 'login: password on stdin is larger than 64 KiB')
            chunks.push(c as Buffer)
          }
          password = Buffer.concat(chunks)
            .toString('utf8')
            .replace(/\r?\n$/, '')
        }
        if (password === undefined && process.stdin.isTTY && process.stderr.isTTY) password = await promptHidden('Password: ')
        if (password === undefined) throw new LadingError('USAGE', 'login: a password is required (--password or --password-stdin)')
        const creds = { username: opts.username, password }
        const flags = registryOptionsFromFlags({ tlsVerify: opts.tlsVerify, certDir: opts.certDir })
        const client = new RegistryClient({ ...flags, creds, registry })
        try {
          await client.checkLogin()
        } finally {
          await client.close()
        }
        // Stored by the first of registries.conf's credential helpers that takes them, as in
        // containers/image (by default the only one is the auth file).
        const { AUTH_FILES_HELPER, credentialHelperList } = await import('../../transport/auth/credentials.js')
        const failures: unknown[] = []
        for (const helper of await credentialHelperList()) {
          try {
            if (helper === AUTH_FILES_HELPER) await storeCredentials(defaultAuthFilePath(opts.authfile), registry, creds)
            else await (await import('../../transport/auth/credential-helper.js')).helperStore(helper, registry, creds)
            process.stdout.write('Login Succeeded!\n')
            return
          } catch (e) {
            failures.push(e)
          }
        }
        if (failures.length === 1) throw failures[0]
        throw new LadingError(
          'UNAUTHORIZED',
          `login: the credentials are right, but no credential helper stored them: ${failures.map((e) => (e as Error).message).join('; ')}`,
        )
      },
    )
}

/** Read one line from the terminal without echoing it (raw mode); Ctrl-C aborts. */
async function promptHidden(question: string): Promise<string> {
  const { LadingError } = await import('../../errors.js')
  process.stderr.write(question)
  const stdin = process.stdin
  stdin.setRawMode(true)
  stdin.resume()
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = ''
      const onData = (b: Buffer): void => {
        for (const ch of b.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData)
            resolve(text)
            return
          }
          if (ch === '\u0003') {
            stdin.off('data', onData)
            reject(new LadingError('USAGE', 'login: cancelled'))
            return
          }
          if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1)
          else text += ch
        }
      }
      stdin.on('data', onData)
    })
  } finally {
    stdin.setRawMode(false)
    stdin.pause()
    process.stderr.write('\n')
  }
}
