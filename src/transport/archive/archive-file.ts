/**
 * Getting an archive into a form TarIndex can index: a seekable, uncompressed, regular file.
 * A pipe (`-`, /dev/stdin, a FIFO) or a compressed archive (`docker save | gzip`) is first spooled
 * (decompressed) into a private temp directory that close() removes.
 */
import { createReadStream, promises as fsp } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { makeTempDir, removeTemp, sweepAbandoned, tempDirPid } from '../../io/cleanup.js'
import { detectCompression, decompress } from '../../io/compression.js'
import { createNewFileStream } from '../../io/fs.js'
import { TarIndex } from './tar-index.js'

/** The spool directory's name in the temp dir: `<prefix><pid>-XXXXXX` (src/io/cleanup.ts makeTempDir). */
const SPOOL_PREFIX = 'lading-archive-'

export interface OpenedArchive {
  index: TarIndex
  close(): Promise<void>
}

async function head(file: string, n: number): Promise<Buffer> {
  const fh = await fsp.open(file, 'r')
  try {
    const b = Buffer.alloc(n)
    const { bytesRead } = await fh.read(b, 0, n, 0)
    return b.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

export async function openArchive(file: string, opts: { tmpDir?: string; stdin?: NodeJS.ReadableStream; label: string }): Promise<OpenedArchive> {
  let tmp: string | undefined
  const cleanup = async (): Promise<void> => {
    if (tmp) await removeTemp(tmp)
  }
  try {
    let src = file
    const isStdin = file === '-'
    const st = isStdin ? undefined : await fsp.stat(file)
    const regular = st?.isFile() ?? false
    const compressed = regular ? detectCompression(await head(file, 512)) : undefined
    if (!regular || (compressed !== undefined && compressed !== 'none')) {
      const tmpDir = opts.tmpDir ?? os.tmpdir()
      await sweepAbandoned(tmpDir, (name) => tempDirPid(name, SPOOL_PREFIX))
      tmp = await makeTempDir(tmpDir, SPOOL_PREFIX)
      src = path.join(tmp, 'archive.tar')
      const out = await createNewFileStream(src, { mode: 0o600 })
      const input = (isStdin ? (opts.stdin ?? process.stdin) : createReadStream(file)) as Readable
      // decompress() peeks the magic, so a piped compressed archive is handled too.
      await pipeline(await decompress(input, undefined, opts.label), out)
    }
    const index = await TarIndex.open(src, opts.label)
    return { index, close: cleanup }
  } catch (e) {
    await cleanup()
    throw e
  }
}
