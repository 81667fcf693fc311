/**
 * The dependency direction of ../shared/DESIGN.md, enforced:
 *   digest <- io <- spec <- {store, layer} <- {bundle, transport} <- copy <- {server, cli}
 * A module may import from its own layer and any layer to its left, never to its right or
 * sideways within a tier (store and layer never import each other; bundle and transport neither).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const srcDir = path.join(repo, 'src')

const RANK: Record<string, number> = { errors: 0, digest: 1, io: 2, spec: 3, store: 4, layer: 4, bundle: 5, transport: 5, copy: 6, server: 7, build: 7, cli: 8, index: 9 }

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

function violations(src: string): string[] {
  const bad: string[] = []
  for (const file of walk(src)) {
    const from = moduleOf(src, file)
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2]!
      const target = path.resolve(path.dirname(file), spec)
      if (!target.startsWith(src + path.sep)) continue
      const to = moduleOf(src, target.replace(/\.js$/, '.ts'))
      if (to === from) continue
      const rf = RANK[from]
      const rt = RANK[to]
      if (rf === undefined || rt === undefined) { bad.push(`${path.relative(src, file)}: unknown module ${rf === undefined ? from : to}`); continue }
      if (rt >= rf) bad.push(`${path.relative(src, file)} (${from}) imports ${spec} (${to})`)
    }
  }
  return bad
}

test('no module imports against the dependency direction of DESIGN.md', () => {
  assert.deepEqual(violations(srcDir), [])
})

test('the direction check flags wrong-way and sideways imports, and allows the right way', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lading-arch-'))
  try {
    const put = (rel: string, text: string) => { mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true }); writeFileSync(path.join(dir, rel), text) }
    put('digest/a.ts', "import { x } from '../spec/b.js'\n")          // wrong way
    put('store/c.ts', "export { y } from '../layer/d.js'\n")           // sideways
    put('layer/d.ts', "import { z } from '../spec/b.js'\nconst m = await import('../io/e.js')\n") // fine
    put('spec/b.ts', "import { q } from '../digest/a.js'\n")           // fine
    put('io/e.ts', "const m = await import('../store/c.js')\n")        // wrong way, dynamic
    const v = violations(dir).sort()
    assert.equal(v.length, 3, v.join('\n'))
    assert.match(v[0]!, /^digest\/a\.ts \(digest\) imports \.\.\/spec\/b\.js/)
    assert.match(v[1]!, /^io\/e\.ts \(io\) imports \.\.\/store\/c\.js/)
    assert.match(v[2]!, /^store\/c\.ts \(store\) imports \.\.\/layer\/d\.js/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
