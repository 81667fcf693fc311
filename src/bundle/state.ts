/**
 * BUNDLE/lading.json: what `lading repack` needs to know about a bundle made by `lading unpack`
 * (the counterpart of umoci's umoci.json + mtree). The file is ours but lives in a directory
 * the user edits, so it is parsed strictly like any untrusted document.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { parseDigest, type Digest } from '../digest/digest.js'
import { LadingError, isErrno, quoteName } from '../errors.js'
import { atomicWriteFile } from '../io/fs.js'
import type { Platform } from '../spec/types.js'

export const STATE_FILE = 'lading.json'
export const SNAPSHOT_FILE = 'lading.snapshot'
export const ROOTFS_DIR = 'rootfs'
export const CONFIG_FILE = 'config.json'
const STATE_VERSION = 1
const MAX_STATE_BYTES = 1024 * 1024

export interface IdMapState {
  containerId: number
  hostId: number
  size: number
}

export interface BundleState {
  version: 1
  /** Absolute path of the OCI layout the bundle came from. */
  layout: string
  /** The tag given to unpack, if any. */
  tag?: string
  /** The manifest the rootfs was unpacked from (the base for the next repack). */
  manifest: { mediaType: string; digest: Digest; size: number }
  platform?: Platform
  /** Snapshot file name inside the bundle, taken right after unpack (or after --refresh-bundle). */
  snapshot: string
  rootless: boolean
  uidMap?: IdMapState[]
  gidMap?: IdMapState[]
}

function bad(file: string, why: string): LadingError {
  return new LadingError('INVALID_DOCUMENT', `${file}: ${why} (was this bundle made by lading unpack?)`)
}

export async function readBundleState(bundle: string): Promise<BundleState> {
  const file = path.join(bundle, STATE_FILE)
  let bytes: Buffer
  try {
    const st = await fsp.lstat(file)
    if (!st.isFile()) throw bad(file, 'not a regular file')
    if (st.size > MAX_STATE_BYTES) throw bad(file, `larger than ${MAX_STATE_BYTES} bytes`)
    bytes = await fsp.readFile(file)
  } catch (e) {
    if (isErrno(e, 'ENOENT')) throw new LadingError('NOT_FOUND', `${file}: no bundle state (was this bundle made by lading unpack?)`, { cause: e })
    throw e
  }
  let v: unknown
  try {
    v = JSON.parse(bytes.toString('utf8'))
  } catch (e) {
    throw new LadingError('INVALID_JSON', `${file}: ${(e as Error).message}`, { cause: e })
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(file, 'not a JSON object')
  const o = v as Record<string, unknown>
  if (o.version !== STATE_VERSION) throw bad(file, `unsupported version ${quoteName(o.version)}`)
  if (typeof o.layout !== 'string' || o.layout === '') throw bad(file, '/layout: missing')
  if (o.tag !== undefined && typeof o.tag !== 'string') throw bad(file, '/tag: not a string')
  const m = o.manifest as Record<string, unknown> | undefined
  if (typeof m !== 'object' || m === null || typeof m.mediaType !== 'string' || typeof m.size !== 'number') throw bad(file, '/manifest: missing or malformed')
  let digest: Digest
  try {
    digest = parseDigest(m.digest)
  } catch (e) {
    throw bad(file, `/manifest/digest: ${(e as Error).message}`)
  }
  if (typeof o.snapshot !== 'string' || o.snapshot === '' || o.snapshot.includes('/') || o.snapshot.startsWith('.'))
    throw bad(file, '/snapshot: missing or not a plain file name')
  const maps = (x: unknown, ptr: string): IdMapState[] | undefined => {
    if (x === undefined) return undefined
    if (!Array.isArray(x)) throw bad(file, `${ptr}: not an array`)
    return x.map((e: unknown, i) => {
      const r = e as Record<string, unknown>
      if (typeof r !== 'object' || r === null || ![r.containerId, r.hostId, r.size].every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) {
        throw bad(file, `${ptr}/${i}: malformed id mapping`)
      }
      return { containerId: r.containerId as number, hostId: r.hostId as number, size: r.size as number }
    })
  }
  const state: BundleState = {
    version: 1,
    layout: o.layout,
    manifest: { mediaType: m.mediaType, digest, size: m.size },
    snapshot: o.snapshot,
    rootless: o.rootless === true,
  }
  if (typeof o.tag === 'string') state.tag = o.tag
  if (o.platform && typeof o.platform === 'object') state.platform = o.platform as Platform
  const u = maps(o.uidMap, '/uidMap')
  const g = maps(o.gidMap, '/gidMap')
  if (u) state.uidMap = u
  if (g) state.gidMap = g
  return state
}

export async function writeBundleState(bundle: string, state: BundleState): Promise<void> {
  await atomicWriteFile(path.join(bundle, STATE_FILE), JSON.stringify(state, null, 2) + '\n', 0o600)
}
