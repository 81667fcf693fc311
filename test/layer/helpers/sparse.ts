import { spawnSync } from 'node:child_process'
import { closeSync, openSync, writeSync } from 'node:fs'

/** A sparse file: data at a few offsets, holes between, and a hole at the end. */
export function makeSparseFile(file: string): Buffer {
  const size = 5 * 1024 * 1024
  const fd = openSync(file, 'w')
  const expected = Buffer.alloc(size)
  for (const [off, len] of [[0, 1000], [1024 * 1024, 4096], [3 * 1024 * 1024 + 17, 70_000]] as const) {
    const piece = Buffer.alloc(len)
    for (let i = 0; i < len; i++) piece[i] = (i * 7 + off) % 256 || 1
    writeSync(fd, piece, 0, len, off)
    piece.copy(expected, off)
  }
  closeSync(fd)
  spawnSync('truncate', ['-s', String(size), file])
  return expected
}

