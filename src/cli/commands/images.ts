/** `lading images` (also `lading image ls`): the images of the local store. */
import type { Command } from 'commander'
import { addStoreOption, openStore, type StoreFlag } from '../store-options.js'
import { formatBytes, printJson, writeOut } from '../util.js'

/** Split a store name into repository and tag (or digest) for display, as podman shows them. */
function splitName(name: string): { repository: string; tag: string } {
  const at = name.indexOf('@')
  if (at >= 0) return { repository: name.slice(0, at), tag: '<none>' }
  const colon = name.lastIndexOf(':')
  return colon > name.lastIndexOf('/') ? { repository: name.slice(0, colon), tag: name.slice(colon + 1) } : { repository: name, tag: 'latest' }
}

export function defineImages(cmd: Command): Command {
  return addStoreOption(
    cmd.description('list the images of the local store').option('--json', 'print JSON: [{name, repository, tag, id, digest, created, size}]'),
  ).action(async (f: StoreFlag & { json?: boolean }) => {
    const store = await openStore(f)
    const rows = []
    for (const img of await store.listImages()) {
      const r = await store.resolve(img.manifest)
      const size = r.manifest.layers.reduce((n, l) => n + l.size, 0) + r.manifest.config.size
      rows.push({ name: img.name, ...splitName(img.name), id: r.manifest.config.digest, digest: img.manifest.digest, created: r.config.created ?? '', size })
    }
    if (f.json) {
      printJson(rows)
      return
    }
    const table = [
      ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
      ...rows.map((r) => [
        r.repository,
        r.tag,
        r.id.slice(r.id.indexOf(':') + 1, r.id.indexOf(':') + 13),
        r.created.slice(0, 19).replace('T', ' '),
        formatBytes(r.size),
      ]),
    ]
    await writeOut(formatTable(table))
  })
}

/** Columns padded to their widest cell, two spaces apart (podman's table layout). */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows
    .map(
      (r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd() + '\n',
    )
    .join('')
}

export function register(program: Command): void {
  defineImages(program.command('images'))
}
