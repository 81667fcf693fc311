import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { commands, commandsFor } from '../../src/cli/commands.js'
import { repoRoot } from '../helpers/cli.js'

test('every module in src/cli/commands is listed, once, and registers its first name', async () => {
  const files = readdirSync(path.join(repoRoot, 'src/cli/commands'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.replace(/\.ts$/, ''))
    .sort()
  const { Command } = await import('commander')
  const seen: string[] = []
  for (const c of commands) {
    const program = new Command()
    const mod = await c.load()
    mod.register(program)
    assert.equal(program.commands.length, 1, `${c.names[0]} registers one command`)
    assert.equal(program.commands[0]!.name(), c.names[0])
    assert.deepEqual([...program.commands[0]!.aliases()], c.names.slice(1))
    seen.push(c.names[0]!)
  }
  assert.deepEqual([...seen].sort(), files)
})

test('commandsFor loads only the named command; help and unknown names load all', () => {
  assert.deepEqual(
    commandsFor(['ls', '--layout', 'x']).map((c) => c.names[0]),
    ['ls'],
  )
  assert.deepEqual(
    commandsFor(['--debug', 'list']).map((c) => c.names[0]),
    ['ls'],
  )
  assert.equal(commandsFor(['--help']).length, commands.length)
  assert.equal(commandsFor(['help', 'ls']).length, commands.length)
  assert.equal(commandsFor(['frobnicate']).length, commands.length)
})
