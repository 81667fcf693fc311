/**
 * Rootless id mappings: container root is the user, and container ids 1..N are the user's
 * subordinate ids from /etc/subuid and /etc/subgid (subuid(5): `NAME_OR_UID:START:COUNT`), when
 * shadow's setuid `newuidmap`/`newgidmap` are installed: runc calls them to write a mapping
 * wider than the user's own id (runc(8) rootless). Without them, or without an entry, the
 * mapping is the user alone (runtime-config.ts's default), and only root exists in the container.
 */
import { accessSync, constants, readFileSync } from 'node:fs'
import type { IdMap } from '../bundle/runtime-config.js'

const MAX_FILE_BYTES = 1024 * 1024

/** The first subordinate range of `user` (name or numeric id) in a subuid(5)-format text. */
export function subordinateRange(text: string, user: { name: string; id: number }): { start: number; count: number } | undefined {
  for (const line of text.split('\n')) {
    const m = /^([^:#\s]+):(\d{1,10}):(\d{1,10})\s*$/.exec(line)
    if (!m || (m[1] !== user.name && m[1] !== String(user.id))) continue
    const start = Number(m[2])
    const count = Number(m[3])
    if (count > 0 && start > 0 && start + count <= 2 ** 32) return { start, count }
  }
  return undefined
}

function readSmall(file: string): string | undefined {
  try {
    const text = readFileSync(file, 'utf8')
    return text.length > MAX_FILE_BYTES ? undefined : text
  } catch {
    return undefined
  }
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The mapping for one kind of id: the user's own id as 0, then its subordinate range from 1. */
function mappingFor(file: string, helper: string, user: { name: string; id: number }): IdMap[] | undefined {
  if (!executable(helper)) return undefined
  const text = readSmall(file)
  const range = text === undefined ? undefined : subordinateRange(text, user)
  if (!range) return undefined
  return [
    { containerId: 0, hostId: user.id, size: 1 },
    { containerId: 1, hostId: range.start, size: range.count },
  ]
}

/** uid and gid mappings for a rootless container of this user, or undefined for the user alone. */
export function rootlessMappings(
  user: { name: string; uid: number; gid: number },
  etc = '/etc',
  bin = '/usr/bin',
): { uidMap: IdMap[]; gidMap: IdMap[] } | undefined {
  const uidMap = mappingFor(`${etc}/subuid`, `${bin}/newuidmap`, { name: user.name, id: user.uid })
  const gidMap = mappingFor(`${etc}/subgid`, `${bin}/newgidmap`, { name: user.name, id: user.gid })
  return uidMap && gidMap ? { uidMap, gidMap } : undefined
}
