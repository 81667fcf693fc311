import type { Command } from 'commander'
import { pipeline } from 'node:stream/promises'
import { usage } from '../util.js'

export function register(program: Command): void {
  program
    .command('cat')
    .description('print a blob from a layout, verified against its digest (DIR@DIGEST)')
    .argument('<dir@digest>', 'layout directory and blob digest')
    .action(async (arg: string) => {
      const at = arg.lastIndexOf('@')
      if (at <= 0) throw usage(`expected DIR@DIGEST, got ${JSON.stringify(arg)}`)
      const { parseDigest } = await import('../../digest/digest.js')
      const { Layout } = await import('../../store/layout.js')
      const digest = parseDigest(arg.slice(at + 1))
      const layout = await Layout.open(arg.slice(0, at))
      const size = await layout.blobSize(digest)
      // The stream verifies size and digest before it ends; a mismatch is an error exit even
      // though the bytes before it were already written (stdout cannot be taken back).
      await pipeline(await layout.getBlob(size === undefined ? { digest } : { digest, size }), process.stdout)
    })
}
