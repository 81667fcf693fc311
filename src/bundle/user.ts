/**
 * Resolving image-spec `Config.User` to runtime-spec `process.user` (image-spec conversion.md
 * §Config.User) from the container's own /etc/passwd and /etc/group. The files are untrusted
 * image content: they are parsed leniently line by line (malformed lines are skipped, as libc
 * does), and they are read by the caller through a function that stays inside the rootfs.
 */
import { LadingError, quoteName } from '../errors.js'
import type { RuntimeUser } from './runtime-types.js'

export interface PasswdEntry {
  name: string
  uid: number
  gid: number
  home: string
}
export interface GroupEntry {
  name: string
  gid: number
  members: string[]
}

/** A resolved user: process.user plus the home directory (for HOME when the image sets none). */
export interface ResolvedUser {
  user: RuntimeUser
  home?: string
}

/** Reads a file of the container's root (e.g. "/etc/passwd"); undefined if it does not exist. */
export type RootFileReader = (containerPath: string) => Promise<string | undefined>

const ID_MAX = 0xffffffff

function parseId(s: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(s)) return undefined
  const n = Number(s)
  return n <= ID_MAX ? n : undefined
}

/** passwd(5): name:password:uid:gid:gecos:home:shell */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const f = line.split(':')
    if (f.length < 4 || f[0] === '') continue
    const uid = parseId(f[2]!)
    const gid = parseId(f[3]!)
    if (uid === undefined || gid === undefined) continue
    out.push({ name: f[0]!, uid, gid, home: f[5] ?? '' })
  }
  return out
}

/** group(5): name:password:gid:member,member */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const f = line.split(':')
    if (f.length < 3 || f[0] === '') continue
    const gid = parseId(f[2]!)
    if (gid === undefined) continue
    const members = (f[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== '')
    out.push({ name: f[0]!, gid, members })
  }
  return out
}

/**
 * `Config.User` forms (image-spec config.md §Properties: User): "", "user", "uid", "user:group",
 * "uid:gid", "user:gid", "uid:group".
 * - Numeric parts are copied verbatim (conversion.md §Config.User: MUST).
 * - Names are looked up in the rootfs's /etc/passwd and /etc/group; a name that is not there is
 *   an error (conversion.md: "MUST return an error").
 * - additionalGids: the groups listing the user as a member, only when the user was given by
 *   name and no group was given (conversion.md: SHOULD NOT modify them otherwise).
 * - An unset User is implementation-defined: we use uid 0 like runc and umoci, taking its gid and
 *   home from passwd when root has an entry there.
 */
export async function resolveUser(spec: string | undefined, read: RootFileReader): Promise<ResolvedUser> {
  const s = spec ?? ''
  const colon = s.indexOf(':')
  const userPart = colon < 0 ? s : s.slice(0, colon)
  const groupPart = colon < 0 ? undefined : s.slice(colon + 1)
  if (colon >= 0 && (userPart === '' || groupPart === '')) {
    throw new LadingError('INVALID_CONFIG', `image config: /config/User: ${quoteName(s)}: empty user or group`)
  }

  let passwd: PasswdEntry[] | undefined
  const loadPasswd = async (): Promise<PasswdEntry[]> => {
    if (passwd === undefined) {
      const text = await read('/etc/passwd')
      passwd = text === undefined ? [] : parsePasswd(text)
    }
    return passwd
  }
  let groups: GroupEntry[] | undefined
  const loadGroups = async (): Promise<GroupEntry[]> => {
    if (groups === undefined) {
      const text = await read('/etc/group')
      groups = text === undefined ? [] : parseGroup(text)
    }
    return groups
  }

  let uid: number
  let gid = 0
  let home: string | undefined
  let byName = false
  let name: string | undefined
  const numericUid = userPart === '' ? 0 : parseId(userPart)
  if (numericUid !== undefined) {
    uid = numericUid
    // gid and home are implementation-defined when only a uid is given: take them from the
    // passwd entry if there is one (what runc and umoci do), else gid 0.
    const entry = (await loadPasswd()).find((p) => p.uid === uid)
    if (entry) {
      gid = entry.gid
      home = entry.home || undefined
    }
  } else {
    const entry = (await loadPasswd()).find((p) => p.name === userPart)
    if (!entry) {
      throw new LadingError('INVALID_CONFIG', `image config: /config/User: user ${quoteName(userPart)} not found in the image's /etc/passwd`)
    }
    uid = entry.uid
    gid = entry.gid
    home = entry.home || undefined
    byName = true
    name = entry.name
  }

  if (groupPart !== undefined) {
    const numericGid = parseId(groupPart)
    if (numericGid !== undefined) {
      gid = numericGid
    } else {
      const g = (await loadGroups()).find((e) => e.name === groupPart)
      if (!g) throw new LadingError('INVALID_CONFIG', `image config: /config/User: group ${quoteName(groupPart)} not found in the image's /etc/group`)
      gid = g.gid
    }
  }

  const user: RuntimeUser = { uid, gid }
  if (byName && groupPart === undefined) {
    const extra: number[] = []
    for (const g of await loadGroups()) {
      if (g.members.includes(name!) && !extra.includes(g.gid)) extra.push(g.gid)
    }
    if (extra.length > 0) user.additionalGids = extra
  }
  return home === undefined ? { user } : { user, home }
}
