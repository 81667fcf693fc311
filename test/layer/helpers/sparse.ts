import { spawnSync } from 'node:child_process'
import { closeSync, openSync, writeSync } from 'node:fs'

/**
 * A sparse file: 30 data regions with holes between them (more than the 4 that fit in a GNU 'S'
 * header, so extension headers are exercised) and a hole at the end.
 */
export function makeSparseFile(file: string): Buffer {
  const size = 5 * 1024 * 1024
  const fd = openSync(file, 'w')
  const expected = Buffer.alloc(size)
  const regions: Array<[number, number]> = [
    [0, 1000],
    [3 * 1024 * 1024 + 17, 70_000],
  ]
  for (let k = 0; k < 28; k++) regions.push([1024 * 1024 + k * 64 * 1024 + (k % 3) * 1000, 3000 + k * 100])
  for (const [off, len] of regions) {
    const piece = Buffer.alloc(len)
    for (let i = 0; i < len; i++) piece[i] = (i * 7 + off) % 256 || 1
    writeSync(fd, piece, 0, len, off)
    piece.copy(expected, off)
  }
  closeSync(fd)
  spawnSync('truncate', ['-s', String(size), file])
  return expected
}
