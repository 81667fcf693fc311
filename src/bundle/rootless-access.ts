/**
 * Rootless bundles hold directories their owner cannot list or enter (mode 000 and friends, umoci
 * issue 222): root reads them regardless, an unprivileged user cannot. While a snapshot or a
 * diff walks the tree, such directories get u+rx, and afterwards their modes are put back; the
 * snapshot records the original modes (umoci's unpriv.Wrap does the same dance). Only used for
 * rootless bundles and only when the process is not root.
 */
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Snapshot } from '../layer/snapshot.js'

export interface OpenedDir {
  rel: string
  abs: string
  mode: number
  opened: number
}

const NEED = 0o500

/** Give the owner r-x on every directory under `root` lacking it; returns them in walk order. */
export async function openUpDirs(root: string): Promise<OpenedDir[]> {
  const opened: OpenedDir[] = []
  if (process.getuid?.() === 0) return opened
  const walk = async (abs: string, rel: string): Promise<void> => {
    const st = await fsp.lstat(abs)
    if (!st.isDirectory()) return
    const mode = st.mode & 0o7777
    if ((mode & NEED) !== NEED) {
      const newMode = mode | NEED
      await fsp.chmod(abs, newMode)
      opened.push({ rel, abs, mode, opened: newMode })
    }
    for (const d of await fsp.readdir(abs, { withFileTypes: true })) {
      if (d.isDirectory()) await walk(path.join(abs, d.name), rel === '' ? d.name : `${rel}/${d.name}`)
    }
  }
  await walk(root, '')
  return opened
}

/** Put the modes back, deepest first (a parent back at 000 would block its children). */
export async function restoreDirs(opened: OpenedDir[]): Promise<void> {
  let first: unknown
  for (const o of [...opened].reverse()) {
    try {
      await fsp.chmod(o.abs, o.mode)
    } catch (e) {
      first ??= e
    }
  }
  if (first !== undefined) throw first
}

/** A snapshot taken while `opened` were open, with their modes as they really are. */
export function withOriginalModes(s: Snapshot, opened: OpenedDir[]): Snapshot {
  for (const o of opened) {
    const e = s.entries.get(o.rel)
    if (e && e.mode === o.opened) e.mode = o.mode
  }
  return s
}

/** A copy of `before` that sees `opened` dirs with their opened modes (so they diff as unchanged). */
export function withOpenedModes(before: Snapshot, opened: OpenedDir[]): Snapshot {
  if (opened.length === 0) return before
  const entries = new Map(before.entries)
  for (const o of opened) {
    const e = entries.get(o.rel)
    if (e && e.mode === o.mode) entries.set(o.rel, { ...e, mode: o.opened })
  }
  return { ...before, entries }
}
