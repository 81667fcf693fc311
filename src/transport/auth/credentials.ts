/**
 * Where a registry's credentials come from, in order:
 *   1. explicit credentials (--creds USER:PASS),
 *   2. each credential helper of registries.conf's `credential-helpers`, in its order (default:
 *      only `containers-auth.json`), as containers/image does; the first that knows the
 *      registry wins, and one that fails is passed over (its error is reported only if none
 *      knows the registry):
 *      - `containers-auth.json` stands for the auth files of authFileSearchPath(): in each, its
 *        `credHelpers[registry]` helper, its `auths` entry, then its `credsStore` helper
 *        (docker's precedence within one file), the first file that knows the registry winning;
 *      - any other name is `docker-credential-<name>`;
 *   3. none: anonymous.
 */
import { LadingError } from '../../errors.js'
import { authFileSearchPath, entryCredentials, findAuthEntry, readAuthFile, type AuthEnv, type Credentials } from './auth-file.js'
import { DOCKER_HUB } from '../docker-reference.js'

/** registries.conf's name for the auth files among credential helpers. */
export const AUTH_FILES_HELPER = 'containers-auth.json'

/**
 * The credential helpers to use, in order: registries.conf's `credential-helpers`, else the auth
 * files alone. The registries.conf files are this process's, or those `env` names
 * ($CONTAINERS_REGISTRIES_CONF, $HOME) when one is given.
 */
export async function credentialHelperList(env?: NodeJS.ProcessEnv): Promise<string[]> {
  const conf = await import('../registries-conf.js')
  return (env ? conf.loadRegistriesConf({ env }) : conf.processRegistriesConf()).credentialHelpers ?? [AUTH_FILES_HELPER]
}

export interface CredentialSource extends AuthEnv {
  creds?: Credentials
  authFile?: string
  /** Default: registries.conf's `credential-helpers`, else only the auth files. */
  credentialHelpers?: string[]
}

/** Parse `USER[:PASS]` as skopeo's --creds does. */
export function parseCredsOption(s: string): Credentials {
  if (!s) throw new LadingError('USAGE', '--creds: expected USER[:PASS]')
  const i = s.indexOf(':')
  if (i === 0) throw new LadingError('USAGE', '--creds: the username is empty')
  return i < 0 ? { username: s, password: '' } : { username: s.slice(0, i), password: s.slice(i + 1) }
}

/** The server string docker config's helpers are asked about (docker stores Hub credentials under its v1 URL). */
function helperServer(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry
}

/** Credential helpers run child processes; their module is loaded only when one is configured. */
function helpers(): Promise<typeof import('./credential-helper.js')> {
  return import('./credential-helper.js')
}

export async function resolveCredentials(registry: string, src: CredentialSource = {}): Promise<Credentials | undefined> {
  if (src.creds) return src.creds
  const list = src.credentialHelpers ?? (await credentialHelperList(src.env))
  // As containers/image: a helper that fails (not installed, or an error of its own) does not
  // stop the search; its error is reported only if no helper has the credentials.
  const failures: string[] = []
  for (const helper of list) {
    try {
      const c =
        helper === AUTH_FILES_HELPER
          ? await fromAuthFiles(registry, src)
          : // Asked about the registry's own name (docker.io too), as containers/image asks these
            // helpers; docker config's helpers below get docker's key for Docker Hub.
            await (await helpers()).helperGet(helper, registry, { env: src.env })
      if (c) return c
    } catch (e) {
      if (list.length === 1) throw e
      failures.push((e as Error).message)
    }
  }
  if (failures.length) throw new LadingError('UNAUTHORIZED', `credentials for ${registry}: ${failures.join('; ')}`)
  return undefined
}

/** The auth files' credentials for `registry` (the `containers-auth.json` helper). */
async function fromAuthFiles(registry: string, src: CredentialSource): Promise<Credentials | undefined> {
  for (const file of authFileSearchPath(src.authFile, src)) {
    const f = await readAuthFile(file)
    if (!f) continue
    const helper = f.credHelpers?.[registry]
    if (helper) {
      const c = await (await helpers()).helperGet(helper, helperServer(registry), { env: src.env })
      if (c) return c
      continue
    }
    const found = findAuthEntry(f, registry)
    if (found) {
      const c = entryCredentials(found.entry, `auth file ${file}: /auths/${found.key}`)
      if (c) return c
    }
    if (f.credsStore) {
      const c = await (await helpers()).helperGet(f.credsStore, helperServer(registry), { env: src.env })
      if (c) return c
    }
  }
  return undefined
}
