import type { Command } from 'commander'
import { formatBytes, parseImageArg, printJson, writeOut } from '../util.js'

export function register(program: Command): void {
  program
    .command('stat')
    .description("show an image's history with its layers and sizes, and its IDs (manifest digest, image id, diff_ids)")
    .requiredOption('--image <dir[:tag]>', 'the image, DIR[:TAG] or DIR@DIGEST')
    .option('--platform <os/arch[/variant]>', 'the platform to show when the tag names an index')
    .option('--json', 'print JSON (history in umoci stat --json form, plus the IDs)')
    .action(async (opts: { image: string; platform?: string; json?: boolean }) => {
      const { dir, tag, digest } = parseImageArg(opts.image)
      const { Layout } = await import('../../store/layout.js')
      const { resolveImage } = await import('../../store/resolve.js')
      const { statImage } = await import('../../spec/image-stat.js')
      const { parsePlatform } = await import('../../spec/platform.js')
      const { parseDigest } = await import('../../digest/digest.js')
      const layout = await Layout.open(dir)
      const img = await resolveImage(layout, digest ? { digest: parseDigest(digest) } : { tag: tag! }, opts.platform ? parsePlatform(opts.platform) : undefined)
      const st = statImage(img.manifestDescriptor, img.manifest, img.config)
      if (opts.json) return printJson(st)
      const rows = [['LAYER', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT']]
      for (const h of st.history) {
        rows.push([h.layer ? h.layer.digest : '<none>', h.created ?? '', h.created_by ?? '', h.layer ? formatBytes(h.layer.size) : '<none>', h.comment ?? ''])
      }
      const width = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
      let out = `Manifest: ${st.manifest.digest} (${st.manifest.mediaType})\nImage ID: ${st.imageId}\nPlatform: ${st.platform}\n`
      if (st.created) out += `Created:  ${st.created}\n`
      out += `Diff IDs:\n${st.diffIds.map((d) => `  ${d}\n`).join('') || '  (none)\n'}\nHistory:\n`
      out +=
        rows
          .map((r) =>
            r
              .map((c, i) => (i === r.length - 1 ? c : c.padEnd(width[i]!)))
              .join(' ')
              .trimEnd(),
          )
          .join('\n') + '\n'
      await writeOut(out)
    })
}
