/**
 * Reading a file of an unpacked rootfs (/etc/passwd, /etc/group) as the container would see it:
 * the path is resolved inside the root as if the root were `/`, so a symlinked /etc/passwd
 * pointing at /etc/shadow or ../../../etc/passwd reads the *container's* file of that name (or
 * nothing), never the host's. The rootfs is untrusted image content.
 */
import { constants, promises as fsp, realpathSync } from 'node:fs'
import { LadingError, isErrno } from '../errors.js'
import { RootResolver } from '../layer/path-safety.js'
import type { RootFileReader } from './user.js'

/** passwd/group files larger than this are refused (they are parsed in memory). */
export const MAX_ROOT_FILE_BYTES = 4 * 1024 * 1024

/**
 * A RootFileReader for `root`. Returns undefined when the file does not exist (or a path
 * component is missing or not a directory); refuses anything but a regular file.
 */
export function rootFileReader(root: string, maxBytes = MAX_ROOT_FILE_BYTES): RootFileReader {
  return async (containerPath: string) => {
    // The resolver wants a symlink-free absolute root; it follows every symlink of the path (the
    // last one too) only within the root, `..` stopping at the root (securejoin semantics), and
    // proves each parent a real directory. undefined = some component is missing. (Not
    // resolveInRoot(): for a missing component it falls back to the *lexical* path, whose
    // parents may be symlinks that the kernel would then follow out of the root.)
    const resolved = new RootResolver(realpathSync(root), { onEscape: 'clamp' }).resolveFull(containerPath, containerPath)
    if (resolved === undefined) return undefined
    const host = resolved.host
    let fh
    try {
      // O_NOFOLLOW: the resolver has followed every symlink inside the root already; if the last
      // component was swapped for a symlink since, refuse rather than follow it out of the root.
      fh = await fsp.open(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined
      // The final component is a symlink the resolver did not follow (it leads nowhere inside
      // the root): there is no such file in the container.
      if (isErrno(e, 'ELOOP')) return undefined
      throw e
    }
    try {
      const st = await fh.stat()
      if (!st.isFile()) throw new LadingError('INVALID_CONFIG', `rootfs ${containerPath}: not a regular file`)
      if (st.size > maxBytes) throw new LadingError('SIZE_LIMIT', `rootfs ${containerPath}: larger than the limit of ${maxBytes} bytes`)
      const buf = Buffer.alloc(st.size)
      let n = 0
      while (n < buf.length) {
        const { bytesRead } = await fh.read(buf, n, buf.length - n, n)
        if (bytesRead === 0) break
        n += bytesRead
      }
      return buf.subarray(0, n).toString('utf8')
    } finally {
      await fh.close()
    }
  }
}
