/**
 * TLS material for one registry, as containers/image reads it: the system CAs plus every
 * `*.crt` in the cert dir as extra CAs, and a `*.cert` + `*.key` pair (same base name) as the
 * client certificate. Without --cert-dir, /etc/containers/certs.d/<host[:port]> and
 * /etc/docker/certs.d/<host[:port]> are used when they exist.
 *
 * Read synchronously: a few small files (usually none) before a registry's first request, which
 * is on the critical path of every docker:// command; asynchronous reads let the command's other
 * work run first and delayed that request by a few milliseconds.
 */
import fs from 'node:fs'
import path from 'node:path'
import { LadingError, isErrno } from '../../errors.js'

export interface TlsMaterial {
  /** The cert dir's CAs; http.ts adds them to the system's (so node:tls loads only when TLS is used). */
  ca?: string[]
  cert?: string
  key?: string
  /** Files read, for messages. */
  files: string[]
}

const MAX_PEM = 1024 * 1024

function readPem(file: string): string {
  const st = fs.statSync(file)
  if (st.size > MAX_PEM) throw new LadingError('SIZE_LIMIT', `certificate file ${file}: larger than ${MAX_PEM} bytes`)
  return fs.readFileSync(file, 'utf8')
}

export function defaultCertDirs(registry: string): string[] {
  return [path.join('/etc/containers/certs.d', registry), path.join('/etc/docker/certs.d', registry)]
}

/** Load the cert dir (explicit, or the default ones that exist); empty material when none. */
export function loadTlsMaterial(registry: string, certDir: string | undefined): TlsMaterial {
  const dirs = certDir ? [certDir] : defaultCertDirs(registry)
  const out: TlsMaterial = { files: [] }
  const extraCa: string[] = []
  for (const dir of dirs) {
    let names: string[]
    try {
      names = fs.readdirSync(dir).sort()
    } catch (e) {
      if (!certDir && (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR'))) continue
      throw new LadingError('NOT_FOUND', `--cert-dir ${dir}: ${(e as Error).message}`, { cause: e })
    }
    for (const name of names) {
      const file = path.join(dir, name)
      if (name.endsWith('.crt')) {
        extraCa.push(readPem(file))
        out.files.push(file)
      } else if (name.endsWith('.cert')) {
        const keyFile = path.join(dir, `${name.slice(0, -'.cert'.length)}.key`)
        let key: string
        try {
          key = readPem(keyFile)
        } catch (e) {
          throw new LadingError('NOT_FOUND', `client certificate ${file} has no matching key ${keyFile}`, { cause: e })
        }
        if (out.cert) throw new LadingError('UNSUPPORTED', `${dir}: more than one client certificate (*.cert)`)
        out.cert = readPem(file)
        out.key = key
        out.files.push(file, keyFile)
      } else if (name.endsWith('.key')) {
        const certFile = path.join(dir, `${name.slice(0, -'.key'.length)}.cert`)
        if (!names.includes(path.basename(certFile))) throw new LadingError('NOT_FOUND', `client key ${file} has no matching certificate ${certFile}`)
      }
    }
    // containers/image uses the first directory that exists.
    break
  }
  if (extraCa.length) out.ca = extraCa
  return out
}
