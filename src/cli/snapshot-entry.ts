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
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import v8 from 'node:v8'
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

if (v8.startupSnapshot.isBuildingSnapshot()) {
  loadLazyBuiltins()
  v8.startupSnapshot.setDeserializeMainFunction(start)
} else {
  start()
}
