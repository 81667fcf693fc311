/**
 * NODE_EXTRA_CA_CERTS, read when a TLS connection needs it instead of at every start.
 *
 * Node 20 parses its ~140 bundled root certificates and the whole file named by
 * NODE_EXTRA_CA_CERTS before running any JavaScript whenever that variable is set: about 30-40 ms
 * of every `lading` command here, most of which never open a TLS connection. So bin/lading moves
 * the variable aside (to LADING_DEFERRED_EXTRA_CA_CERTS) before it starts Node, runCli() puts it
 * back into process.env (child processes such as credential helpers see what the user set), and
 * http.ts adds the file's certificates to the bundled roots for every TLS connection, which is what
 * Node itself does with the variable. As Node does, a file that cannot be read is a warning, and
 * TLS goes on with the bundled roots.
 */
import { readFileSync } from 'node:fs'

/** Set by bin/lading; internal to the wrapper and runCli. */
export const DEFERRED_ENV = 'LADING_DEFERRED_EXTRA_CA_CERTS'

let deferredFile: string | undefined
let loaded: string[] | undefined

/** Called once at start-up: takes the deferred variable back into NODE_EXTRA_CA_CERTS. */
export function adoptDeferredExtraCaCerts(env: NodeJS.ProcessEnv = process.env): void {
  const file = env[DEFERRED_ENV]
  if (file === undefined) return
  delete env[DEFERRED_ENV]
  if (file === '') return
  env.NODE_EXTRA_CA_CERTS = file
  deferredFile = file
  loaded = undefined
}

/** The deferred file's PEM text (as one entry: node:tls reads several certificates from one string), read once. */
export function deferredExtraCaCerts(): string[] {
  if (deferredFile === undefined) return []
  if (loaded === undefined) {
    try {
      loaded = [readFileSync(deferredFile, 'latin1')]
    } catch (e) {
      process.emitWarning(`Ignoring extra certs from \`${deferredFile}\`, load failed: ${(e as Error).message}`)
      loaded = []
    }
  }
  return loaded
}
