// Build step after tsc: bundles build/src into one CommonJS file, build/src/cli/lading.cjs, whose
// entry first loads every module of build/src and then src/cli/snapshot-entry.ts, and builds the
// start-up snapshot from it (scripts/build-snapshot.sh). bin/lading runs the snapshot.
// esbuild is the bundler: Node 20 can only snapshot a single script.
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const srcDir = path.join(root, 'build', 'src')
const entryName = path.join('cli', 'snapshot-entry.js')
const skip = new Set([entryName, path.join('cli', 'main.js')])

function modules(dir, rel = '') {
  return readdirSync(path.join(dir, rel), { withFileTypes: true })
    .flatMap((e) => {
      const r = path.join(rel, e.name)
      if (e.isDirectory()) return modules(dir, r)
      // Only outputs of a source that still exists: tsc leaves the output of a moved or deleted
      // file behind in build/, and bundling it would import names that are gone.
      return e.name.endsWith('.js') && !skip.has(r) && existsSync(path.join(root, 'src', r.replace(/\.js$/, '.ts'))) ? [r] : []
    })
    .sort()
}

// Every module is imported (so loaded and initialized before the snapshot is taken: `await
// import()` inside a command then costs nothing), then the entry, which must run last.
const contents = [...modules(srcDir), entryName].map((m) => `import './${m.split(path.sep).join('/')}'`).join('\n')
await build({
  stdin: { contents, resolveDir: srcDir, sourcefile: 'lading-bundle-entry.js' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: path.join(srcDir, 'cli', 'lading.cjs'),
  // Native addons stay files of their own, loaded with createRequire at run time.
  external: ['zstd-napi', 'zstd-napi/*', '@napi-rs/xattr', '*.node'],
  define: { 'import.meta.url': '__ladingMetaUrl' },
  // import() of a built-in becomes require(): a snapshot has no ES module loader to call.
  supported: { 'dynamic-import': false },
  logLevel: 'warning',
  legalComments: 'none',
})
execFileSync('bash', [path.join(root, 'scripts', 'build-snapshot.sh')], { stdio: 'inherit' })
