/**
 * Running applyLayer as the unprivileged test user `ladingtest` (CI creates it; a root test run
 * creates it with useradd when missing). The compiled module must be readable by that user: when
 * the checkout is not (e.g. under /root), the build and the native xattr module are copied to a
 * world-readable temporary directory.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, cpSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir, type AfterHook } from '../../fixtures/temp.js'

export const TEST_USER = 'ladingtest'

/** Ensure the test user exists (root only); false when it cannot. */
export function ensureTestUser(): boolean {
  if (spawnSync('id', [TEST_USER], { stdio: 'ignore' }).status === 0) return true
  return spawnSync('useradd', ['--create-home', '--shell', '/bin/sh', TEST_USER], { stdio: 'ignore' }).status === 0
}

export function testUserIds(): { uid: number; gid: number } {
  const uid = Number(spawnSync('id', ['-u', TEST_USER], { encoding: 'utf8' }).stdout.trim())
  const gid = Number(spawnSync('id', ['-g', TEST_USER], { encoding: 'utf8' }).stdout.trim())
  return { uid, gid }
}

/** Path of a build/src/layer/apply.js the test user can import, and a cleanup for any copy made. */
export function applyModuleForTestUser(hook: AfterHook): { applyJs: string } {
  const applyJs = fileURLToPath(new URL('../../../src/layer/apply.js', import.meta.url))
  const readable = spawnSync('runuser', ['-u', TEST_USER, '--', process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(applyJs)})`], {
    stdio: 'ignore',
  })
  if (readable.status === 0) return { applyJs }
  const buildRoot = path.resolve(path.dirname(applyJs), '../../..') // repo root (build/src/layer -> .)
  const tmp = tempDir(hook, { prefix: 'lading-build-' })
  cpSync(path.join(buildRoot, 'build', 'src'), path.join(tmp, 'build', 'src'), { recursive: true })
  cpSync(path.join(buildRoot, 'node_modules', '@napi-rs'), path.join(tmp, 'node_modules', '@napi-rs'), { recursive: true })
  cpSync(path.join(buildRoot, 'package.json'), path.join(tmp, 'package.json'))
  chmodSync(tmp, 0o755)
  spawnSync('chmod', ['-R', 'a+rX', tmp])
  return { applyJs: path.join(tmp, 'build', 'src', 'layer', 'apply.js') }
}
