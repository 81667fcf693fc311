/**
 * The optional native gzip encoder (native/gzip_member.c, libdeflate on libuv's pool). It is built
 * by `npm install` when Debian's libdeflate-dev is present (scripts/build-native.sh); without it,
 * or with LADING_GZIP=zlib in the environment, gzip output comes from Node's zlib instead.
 */
import { optionalAddon } from './native-addon.js'

export interface NativeGzip {
  /** One complete gzip member (MTIME 0, OS 255) of `input` at libdeflate `level` (1-12). */
  gzipMember(input: Buffer, level: number): Promise<Buffer>
  /** The same member written into `out` (room for libdeflate's bound); resolves with its length. */
  gzipMemberInto(input: Buffer, level: number, out: Buffer): Promise<number>
}

const addon = optionalAddon<NativeGzip>('lading_gzip', ['gzipMember', 'gzipMemberInto'], { env: 'LADING_GZIP', value: 'zlib' })

export function nativeGzip(): NativeGzip | undefined {
  return addon.get()
}

/** Why the native encoder is not in use (for `--debug` output and tests), or undefined if it is. */
export function nativeGzipUnavailableReason(): string | undefined {
  return addon.unavailableReason()
}
