/**
 * User and group id mappings for rootless unpacking, in umoci's `--uid-map` / `--gid-map` syntax
 * `container:host:size` (the same triple as runtime-spec config-linux.md §User namespace mappings,
 * written in the order of /proc/PID/uid_map).
 */
import { LadingError, quoteName } from '../errors.js'

export interface IdMapping {
  containerId: number
  hostId: number
  size: number
}

const MAX_ID = 0xffffffff // ids are 32-bit; (uid_t)-1 is reserved but ranges may reach it

/** Parse `container:host:size`; USAGE error naming the input when malformed or out of range. */
export function parseIdMap(s: string): IdMapping {
  const m = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/.exec(s.trim())
  if (!m) throw new LadingError('USAGE', `invalid id mapping ${quoteName(s)}: expected container:host:size, e.g. 0:1000:1`)
  const [containerId, hostId, size] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (size < 1) throw new LadingError('USAGE', `invalid id mapping ${quoteName(s)}: size must be at least 1`)
  if (containerId + size - 1 > MAX_ID || hostId + size - 1 > MAX_ID) {
    throw new LadingError('USAGE', `invalid id mapping ${quoteName(s)}: range passes the largest id ${MAX_ID}`)
  }
  return { containerId, hostId, size }
}

/** The host id for container id `id`, or undefined when no mapping covers it. */
export function mapId(id: number, maps: readonly IdMapping[]): number | undefined {
  for (const m of maps) {
    if (id >= m.containerId && id < m.containerId + m.size) return m.hostId + (id - m.containerId)
  }
  return undefined
}
