/**
 * A self-signed certificate and its RSA key made by `openssl req -x509`, for the servers tests
 * start: HTTPS on 127.0.0.1 (the subjectAltName covers 127.0.0.1 and localhost), and the token
 * server's JWT signing key. Callers check `requireTool(t, 'openssl')` where it may be absent.
 */
import { execFileSync } from 'node:child_process'
import path from 'node:path'

/** Writes `<name>.pem` (certificate) and `<name>-key.pem` (unencrypted key) in `dir`; valid two days. */
export function selfSigned(dir: string, name: string, cn: string): { cert: string; key: string } {
  const cert = path.join(dir, `${name}.pem`)
  const key = path.join(dir, `${name}-key.pem`)
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  )
  return { cert, key }
}
