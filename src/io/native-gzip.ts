/**
 * The optional native gzip encoder (native/gzip_member.c, libdeflate on libuv's pool). It is built
 * by `npm install` when Debian's libdeflate-dev is present (scripts/build-native.sh); without it,
 * or with LADING_GZIP=zlib in the environment, gzip output comes from Node's zlib instead.
 */
import { createRequire } from 'node:module'

export interface NativeGzip {
  /** One complete gzip member (MTIME 0, OS 255) of `input` at libdeflate `level` (1-12). */
  gzipMember(input: Buffer, level: number): Promise<Buffer>
  /** The same member written into `out` (room for libdeflate's bound); resolves with its length. */
  gzipMemberInto(input: Buffer, level: number, out: Buffer): Promise<number>
}

/**
 * From build/src/io/ (and src/io/ under a TS runner, and the bundle in build/src/cli/) to the
 * repository root. Resolved on first use, not at module load: the start-up snapshot loads modules
 * at build time, and the package may have moved since.
 */
const addonPath = (): string => new URL('../../../native/build/Release/lading_gzip.node', import.meta.url).pathname
let loaded: NativeGzip | null | undefined
let loadError: string | undefined

export function nativeGzip(): NativeGzip | undefined {
  if (loaded === undefined) {
    loaded = null
    if (process.env.LADING_GZIP === 'zlib') {
      loadError = 'LADING_GZIP=zlib'
    } else {
      try {
        const addon = addonPath()
        const m = createRequire(import.meta.url)(addon) as Partial<NativeGzip>
        if (typeof m.gzipMember === 'function' && typeof m.gzipMemberInto === 'function') loaded = m as NativeGzip
        else loadError = `${addon} is an older build (npm rebuild)`
      } catch (e) {
        loadError = (e as Error).message.split('\n')[0]
      }
    }
  }
  return loaded ?? undefined
}

/** Why the native encoder is not in use (for `--debug` output and tests), or undefined if it is. */
export function nativeGzipUnavailableReason(): string | undefined {
  return nativeGzip() ? undefined : loadError
}
