/**
 * The `lading` executable as one bundle in a V8 start-up snapshot (scripts/bundle.mjs builds
 * both; bin/lading runs it). Node 20 spends ~40 ms loading Lading's ~120 ES modules through its
 * module loader before a command can start; from a snapshot the modules, commander and the
 * built-ins they use are already loaded and initialized, and a command starts in ~15 ms more than
 * `node -e 0`. The snapshot is built by the Node that will run it (at build and install time):
 * V8 refuses a snapshot from another version, and bin/lading then falls back to ./main.ts.
 *
 * Rules for code that ends up in the snapshot (all of src/): nothing read from the process at
 * module load (argv, environment, cwd, paths from import.meta.url), no handle opened at module
 * load; ./run.ts reads them when the command runs.
 */
import * as commander from 'commander'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import v8 from 'node:v8'
import { copyImage } from '../copy/copy.js'
import { drainPool } from '../io/block-pool.js'
import { MediaType } from '../spec/media-types.js'
import { Layout } from '../store/layout.js'
import { openDestination, openSource } from '../transport/open.js'
import { parseReference } from '../transport/reference.js'
import { parseRegistriesConf } from '../transport/registries-conf.js'
import { commands } from './commands.js'
import { runCli } from './run.js'

declare global {
  /** import.meta.url of every module in the bundle (esbuild defines it as this): the bundle's own URL, set at run time. */
  var __ladingMetaUrl: string
}

function start(): void {
  // bin/lading passes the bundle's real path as the script argument.
  globalThis.__ladingMetaUrl = pathToFileURL(path.resolve(process.argv[1] ?? '.')).href
  runCli(commander)
}

/**
 * Built-ins that node:fs loads on first use, loaded now so that they are in the snapshot too
 * (node:http cannot be: Node 20 cannot snapshot its parser binding).
 */
function loadLazyBuiltins(): void {
  void fs.promises
  void fs.ReadStream
  void fs.WriteStream
}

/**
 * Runs the code of a command once while the snapshot is built, so that what V8 and Node make on
 * first use (compiled functions, object shapes, internal modules) is in the snapshot: the CLI's
 * options and a registries.conf are parsed, and a small image is copied between two layouts in a
 * temp directory, through the same reference, layout, copy-engine and stream code as `lading
 * copy` (a push then sends its first PATCH about 5 ms sooner). Nothing it leaves may reach the snapshot: the temp
 * directory is removed, every file closed, and the block pool emptied. It must not touch native
 * addons (compression, xattrs), which cannot be snapshotted. A failure only costs that head start.
 */
async function warmUp(): Promise<void> {
  let dir: string | undefined
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lading-snapshot-'))
    const program = new commander.Command('lading').exitOverride()
    for (const c of commands) (await c.load()).register(program)
    program.commands.find((c) => c.name() === 'copy')?.parseOptions(['--dest-tls-verify=false', 'oci:/x:y', 'docker://127.0.0.1:5000/a/b:c'])
    parseReference('docker://127.0.0.1:5000/a/b:c')
    parseRegistriesConf('[[registry]]\nprefix = "a.test/b"\nlocation = "c.test/d"\ninsecure = true\n[[registry.mirror]]\nlocation = "m.test/d"\n', 'warm-up')

    const src = await Layout.init(path.join(dir, 'src'))
    const config = await src.putBlob(
      Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] } })),
    )
    const layer = await src.putBlob(Buffer.alloc(300 * 1024, 7))
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, ...config },
      layers: [{ mediaType: MediaType.OciLayerGzip, ...layer }],
    }
    await src.setTag('t', await src.putManifest(Buffer.from(JSON.stringify(manifest)), MediaType.OciManifest))
    for (const to of ['a', 'b']) {
      const from = await openSource(parseReference(`oci:${path.join(dir, 'src')}:t`))
      const dest = await openDestination(parseReference(`oci:${path.join(dir, to)}:t`))
      try {
        await copyImage(from, dest, { onProgress: () => {} })
      } finally {
        await Promise.allSettled([from.close(), dest.close()])
      }
    }
  } catch (e) {
    process.stderr.write(`lading: start-up snapshot warm-up failed (the snapshot is still made): ${(e as Error).message}\n`)
  } finally {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true })
    drainPool()
  }
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  loadLazyBuiltins()
  void warmUp()
  v8.startupSnapshot.setDeserializeMainFunction(start)
} else {
  start()
}
