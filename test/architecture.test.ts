/**
 * The dependency direction of the project's design (README, Design), enforced:
 *   digest <- io <- spec <- {store, layer} <- {bundle, transport} <- copy <- {server, build, run} <- cli
 * A module may import from its own layer and any layer to its left, never to its right or
 * sideways within a tier (store and layer never import each other; bundle and transport neither).
 * And no file imports itself back through others (the design: "a cycle inside a module is a design
 * bug"): the file import graph of src/ has no cycle.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './fixtures/temp.js'
import { writeTree } from './fixtures/write-tree.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const srcDir = path.join(repo, 'src')

const RANK: Record<string, number> = {
  errors: 0,
  digest: 1,
  io: 2,
  spec: 3,
  store: 4,
  layer: 4,
  bundle: 5,
  transport: 5,
  copy: 6,
  server: 7,
  build: 7,
  run: 7,
  cli: 8,
  index: 9,
}

function moduleOf(src: string, file: string): string {
  const rel = path.relative(src, file).split(path.sep)
  return rel.length === 1 ? rel[0]!.replace(/\.ts$/, '') : rel[0]!
}

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name)
    if (statSync(p).isDirectory()) yield* walk(p)
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) yield p
  }
}

/**
 * The relative imports of `file` inside `src`: static, `export ... from`, dynamic `import()` and
 * type-only ones (`import type`, `typeof import()`), as [specifier, target .ts path].
 */
function importsOf(src: string, file: string): Array<[string, string]> {
  const out: Array<[string, string]> = []
  const text = readFileSync(file, 'utf8')
  for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2]!
    const target = path.resolve(path.dirname(file), spec)
    if (target.startsWith(src + path.sep)) out.push([spec, target.replace(/\.js$/, '.ts')])
  }
  return out
}

function violations(src: string): string[] {
  const bad: string[] = []
  for (const file of walk(src)) {
    const from = moduleOf(src, file)
    for (const [spec, target] of importsOf(src, file)) {
      const to = moduleOf(src, target)
      if (to === from) continue
      const rf = RANK[from]
      const rt = RANK[to]
      if (rf === undefined || rt === undefined) {
        bad.push(`${path.relative(src, file)}: unknown module ${rf === undefined ? from : to}`)
        continue
      }
      if (rt >= rf) bad.push(`${path.relative(src, file)} (${from}) imports ${spec} (${to})`)
    }
  }
  return bad
}

test('no module imports against the dependency direction of the design', () => {
  assert.deepEqual(violations(srcDir), [])
})

test('the direction check flags wrong-way and sideways imports, and allows the right way', (t) => {
  const dir = tempDir(t, { prefix: 'lading-arch-' })
  writeTree(dir, {
    'digest/a.ts': "import { x } from '../spec/b.js'\n", // wrong way
    'store/c.ts': "export { y } from '../layer/d.js'\n", // sideways
    'layer/d.ts': "import { z } from '../spec/b.js'\nconst m = await import('../io/e.js')\n", // fine
    'spec/b.ts': "import { q } from '../digest/a.js'\n", // fine
    'io/e.ts': "const m = await import('../store/c.js')\n", // wrong way, dynamic
  })
  const v = violations(dir).sort()
  assert.equal(v.length, 3, v.join('\n'))
  assert.match(v[0]!, /^digest\/a\.ts \(digest\) imports \.\.\/spec\/b\.js/)
  assert.match(v[1]!, /^io\/e\.ts \(io\) imports \.\.\/store\/c\.js/)
  assert.match(v[2]!, /^store\/c\.ts \(store\) imports \.\.\/layer\/d\.js/)
})

/**
 * The import cycles of `src`: each strongly connected component of more than one file in the file
 * import graph (Tarjan), as sorted paths relative to `src`, the clusters sorted too. Type-only and
 * dynamic imports count: they are erased or deferred at run time, but a type cycle still ties
 * two files' designs together, and a deferred one is a dispatcher that knows its callers.
 */
function importCycles(src: string): string[][] {
  const graph = new Map<string, string[]>()
  for (const file of walk(src))
    graph.set(
      file,
      importsOf(src, file).map(([, t]) => t),
    )
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const clusters: string[][] = []
  const visit = (v: string): void => {
    index.set(v, index.size)
    low.set(v, index.get(v)!)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!))
      }
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        c.push(w)
      } while (w !== v)
      if (c.length > 1) clusters.push(c.map((f) => path.relative(src, f)).sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return clusters.sort((a, b) => a[0]!.localeCompare(b[0]!))
}

test('no import cycle between files of src/ (within a module or across)', () => {
  assert.deepEqual(importCycles(srcDir), [])
})

test('the cycle check finds static, type-only, re-export and dynamic cycles, and passes a tree without one', (t) => {
  const dir = tempDir(t, { prefix: 'lading-cycles-' })
  writeTree(dir, {
    'transport/open.ts': "export async function open() { return (await import('./oci/source.js')).x }\n", // dispatcher -> transport
    'transport/oci/source.ts': "import type { T } from '../open.js'\nexport const x = 1\n", // -> back, type only
    'transport/auth/a.ts': "export { n } from '../registry/n.js'\n",
    'transport/registry/n.ts': "import { a } from '../auth/a.js'\nexport const n = a\n",
    'spec/one.ts': "import { two } from './two.js'\n",
    'spec/two.ts': 'export const two = 2\n',
    'spec/three.ts': "const t: typeof import('./one.js') | undefined = undefined\n",
  })
  assert.deepEqual(importCycles(dir), [
    ['transport/auth/a.ts', 'transport/registry/n.ts'],
    ['transport/oci/source.ts', 'transport/open.ts'],
  ])
  rmSync(path.join(dir, 'transport/registry/n.ts'))
  rmSync(path.join(dir, 'transport/oci/source.ts'))
  assert.deepEqual(importCycles(dir), [])
})
