import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isLadingError } from '../../src/errors.js'
import { breakIfStale, breakerPath, readLockInfo, withLock } from '../../src/io/lock.js'
import { tempDir } from '../fixtures/temp.js'

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'])
  return Number(r.stdout.toString())
}

test('withLock: critical sections never overlap and the lock file is removed afterwards', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  let inside = 0
  let maxInside = 0
  let done = 0
  await Promise.all(
    Array.from({ length: 12 }, async () =>
      withLock(lock, async () => {
        inside++
        maxInside = Math.max(maxInside, inside)
        await sleep(3)
        inside--
        done++
      }),
    ),
  )
  assert.equal(maxInside, 1)
  assert.equal(done, 12)
  await assert.rejects(fsp.stat(lock), { code: 'ENOENT' })
})

test('withLock: the lock file names pid, hostname and time while held', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  await withLock(lock, async () => {
    const info = await readLockInfo(lock)
    assert.equal(info?.pid, process.pid)
    assert.equal(info?.hostname, os.hostname())
    assert.ok(Date.now() - Date.parse(info!.time) < 10_000)
  })
})

test('withLock: released when fn throws', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  await assert.rejects(
    withLock(lock, async () => {
      throw new Error('boom')
    }),
    /boom/,
  )
  await assert.rejects(fsp.stat(lock), { code: 'ENOENT' })
})

test('withLock: a lock held by a live process times out with LOCKED naming the holder', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  await fsp.writeFile(lock, JSON.stringify({ pid: process.pid, hostname: os.hostname(), time: new Date().toISOString(), token: 'other' }))
  const t0 = Date.now()
  await assert.rejects(
    withLock(lock, async () => {}, { timeoutMs: 300 }),
    (e: unknown) => isLadingError(e, 'LOCKED') && new RegExp(`locked by pid ${process.pid} on ${os.hostname()}`).test((e as Error).message),
  )
  assert.ok(Date.now() - t0 < 3000)
  // The foreign lock is left alone.
  assert.equal((await readLockInfo(lock))?.token, 'other')
})

test('withLock: stale lock recovery when the holder pid is dead', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  const pid = deadPid()
  await fsp.writeFile(lock, JSON.stringify({ pid, hostname: os.hostname(), time: new Date().toISOString(), token: 'dead' }))
  assert.equal(await withLock(lock, async () => 'ran', { timeoutMs: 2000 }), 'ran')
})

test('withLock: a lock that changes hands after it was judged stale is not broken (the holder released it and exited; another took it)', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  const info = (token: string, pid: number): string => JSON.stringify({ pid, hostname: os.hostname(), time: new Date().toISOString(), token })
  await fsp.writeFile(lock, info('released', deadPid()))
  await breakIfStale(lock, 60_000, async () => {
    // Between judging and breaking: the dead holder's lock is gone and a live process holds a
    // new one (often on the very inode number the old one had).
    await fsp.rm(lock)
    await fsp.writeFile(lock, info('live', process.pid), { flag: 'wx' })
  })
  assert.equal((await readLockInfo(lock))?.token, 'live', 'the new holder keeps its lock')
  await assert.rejects(fsp.stat(breakerPath(lock)), { code: 'ENOENT' }, 'the breaker lock is released')

  // Still the judged one: broken.
  await fsp.writeFile(lock, info('dead', deadPid()))
  await breakIfStale(lock, 60_000, async () => {})
  await assert.rejects(fsp.stat(lock), { code: 'ENOENT' })
})

test('withLock: only one waiter breaks a stale lock at a time; a breaker that died is cleared, a live one never', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  const info = (pid: number, token: string, hostname = os.hostname()): string => JSON.stringify({ pid, hostname, time: new Date().toISOString(), token })
  await fsp.writeFile(lock, info(deadPid(), 'dead'))
  // A live breaker (this process), even an old one: left alone, and the lock with it.
  await fsp.writeFile(breakerPath(lock), info(process.pid, 'live-breaker'))
  const old = new Date(Date.now() - 60_000)
  await fsp.utimes(breakerPath(lock), old, old)
  await breakIfStale(lock, 60_000)
  assert.equal((await readLockInfo(lock))?.token, 'dead', 'another waiter is breaking it: left alone')
  assert.equal((await readLockInfo(breakerPath(lock)))?.token, 'live-breaker', "a live breaker's lock is never removed")

  // A young breaker lock nobody wrote yet (a breaker between create and write): left alone.
  await fsp.writeFile(breakerPath(lock), '')
  await breakIfStale(lock, 60_000)
  assert.ok((await fsp.stat(breakerPath(lock))).isFile())

  // One whose breaker died: cleared at once, and the stale lock then broken.
  await fsp.writeFile(breakerPath(lock), info(deadPid(), 'dead-breaker'))
  assert.equal(await withLock(lock, async () => 'ran', { timeoutMs: 2000 }), 'ran', "the dead breaker's file was cleared and the stale lock broken")
  await assert.rejects(fsp.stat(breakerPath(lock)), { code: 'ENOENT' })
})

test('withLock: stale lock recovery when the lock is older than the bound (pid reused, other host)', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  await fsp.writeFile(lock, JSON.stringify({ pid: process.pid, hostname: 'elsewhere', time: '2020-01-01T00:00:00Z', token: 'old' }))
  const old = new Date(Date.now() - 120_000)
  await fsp.utimes(lock, old, old)
  assert.equal(await withLock(lock, async () => 'ran', { timeoutMs: 2000, staleMs: 60_000 }), 'ran')
})

test('withLock: a fresh lock from another host is not broken; an unreadable young lock is not broken, an old one is', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  await fsp.writeFile(lock, JSON.stringify({ pid: 1, hostname: 'elsewhere', time: new Date().toISOString(), token: 'remote' }))
  await assert.rejects(
    withLock(lock, async () => {}, { timeoutMs: 200 }),
    (e: unknown) => isLadingError(e, 'LOCKED'),
  )
  await fsp.writeFile(lock, '')
  await assert.rejects(
    withLock(lock, async () => {}, { timeoutMs: 200 }),
    (e: unknown) => isLadingError(e, 'LOCKED'),
  )
  const old = new Date(Date.now() - 10_000)
  await fsp.utimes(lock, old, old)
  await withLock(lock, async () => {}, { timeoutMs: 2000 })
})

test('withLock: the holder keeps its lock fresh, so a long critical section is not judged stale', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  const order: string[] = []
  const first = withLock(
    lock,
    async () => {
      order.push('a-start')
      await sleep(600)
      order.push('a-end')
    },
    { staleMs: 200 },
  )
  await sleep(50)
  const second = withLock(
    lock,
    async () => {
      order.push('b')
    },
    { staleMs: 200, timeoutMs: 5000 },
  )
  await Promise.all([first, second])
  assert.deepEqual(order, ['a-start', 'a-end', 'b'])
})

test('withLock: a holder killed with SIGKILL does not block the next process for long', async (t) => {
  const lock = path.join(tempDir(t, { prefix: 'lading-lock-' }), 'x.lock')
  const lockModule = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/io/lock.js')).href
  const code = `
    const { withLock } = await import(${JSON.stringify(lockModule)});
    await withLock(process.argv.at(-1), async () => { process.stdout.write('held\\n'); await new Promise(() => setInterval(() => {}, 1000)) });
  `
  const holder = spawn(process.execPath, ['--input-type=module', '-e', code, '--', lock], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()))
  assert.equal((await readLockInfo(lock))?.pid, holder.pid)
  holder.kill('SIGKILL')
  await new Promise((resolve) => holder.once('exit', resolve))
  const t0 = Date.now()
  await withLock(lock, async () => {}, { timeoutMs: 5000 })
  assert.ok(Date.now() - t0 < 2000, 'recovered from the dead holder promptly')
})
