/**
 * Interoperability tests need real tools (skopeo, umoci, oci-image-tool, runc, docker-registry).
 * Locally a missing tool skips the test with a visible reason; in CI (CI=true) nothing may
 * skip, so a missing tool is a failure.
 */
import { accessSync, constants } from 'node:fs'
import path from 'node:path'
import type { TestContext } from 'node:test'

const found = new Map<string, string | undefined>()

/** Absolute path of `name` on PATH, or undefined. */
export function findTool(name: string): string | undefined {
  if (found.has(name)) return found.get(name)
  let hit: string | undefined
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue
    const candidate = path.join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      hit = candidate
      break
    } catch {
      // not here
    }
  }
  found.set(name, hit)
  return hit
}

export function inCI(): boolean {
  return process.env.CI === 'true'
}

/**
 * True when `name` is installed. Otherwise marks the test skipped (`${name} not installed`) and
 * returns false, or throws when CI=true.
 */
export function requireTool(t: TestContext, name: string): boolean {
  if (findTool(name)) return true
  if (inCI()) throw new Error(`${name} not installed, and CI=true forbids skipping`)
  t.skip(`${name} not installed`)
  return false
}
