/**
 * The body of the `lading` executable, shared by its two entry points: ./main.ts (plain ESM,
 * Node's module loader) and ./snapshot-entry.ts (one bundle, loaded from a V8 start-up snapshot by
 * bin/lading). Commands live one per file in src/cli/commands/, listed in ./commands.ts; each
 * registers itself on the commander program. Errors end here: a LadingError prints one line
 * `lading: <message>` and exits 1 (2 for usage errors); anything else is a bug, printed with its
 * stack under --debug or LADING_DEBUG=1.
 */
import type * as Commander from 'commander'
import { LadingError } from '../errors.js'
import { interruptAll, isInterrupting, signalClaim, sweepTrackedSync } from '../io/cleanup.js'
import { adoptDeferredExtraCaCerts } from '../transport/registry/extra-ca.js'
import { commandsFor } from './commands.js'

/** How long an interrupted command gets to stop (close connections, remove what it wrote). */
const INTERRUPT_HOOKS_MS = 15_000

/**
 * Runs the command line in process.argv. Everything read from the process (argv, environment,
 * handlers) is read here, at run time, never at module load: a start-up snapshot loads the
 * modules once, at build time.
 */
export function runCli(commander: typeof Commander): void {
  const { Command, CommanderError } = commander
  adoptDeferredExtraCaCerts()
  const debug = process.argv.includes('--debug') || process.env.LADING_DEBUG === '1'

  function fail(e: unknown): void {
    // A command that fails because an interruption stopped it is not an error: the signal
    // handler below reports the interruption and exits.
    if (isInterrupting()) return
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) process.exit(0) // --help, --version
      process.stderr.write(`lading: ${usageLine(e)}\n`)
      process.exit(2)
    }
    if (e instanceof LadingError) {
      process.stderr.write(`lading: ${e.message}\n`)
      if (debug && e.stack) process.stderr.write(e.stack + '\n')
      process.exit(e.code === 'USAGE' ? 2 : 1)
    }
    const err = e as NodeJS.ErrnoException
    // System errors (ENOENT, EACCES, ...) are the user's environment, not our bug: one line.
    if (err && typeof err.code === 'string' && typeof err.syscall === 'string') {
      process.stderr.write(`lading: ${err.syscall} ${err.path ?? ''}: ${err.code}: ${err.message.replace(/^[A-Z]+: /, '')}\n`)
    } else {
      process.stderr.write(`lading: internal error: ${err?.message ?? String(e)}\n`)
    }
    if (debug && err?.stack) process.stderr.write(err.stack + '\n')
    process.exit(1)
  }

  async function main(): Promise<void> {
    const program = new Command('lading')
      .description('OCI container image toolkit: layouts, bundles, archives and registries')
      .version(process.env.npm_package_version ?? '0.1.0')
      .option('--debug', 'print stack traces for errors')
      // Commander's own error text (and the help it prints when a command is missing) is
      // replaced by one line from fail(): see usageLine.
      .configureOutput({ outputError: () => {}, writeErr: () => {} })
    const modules = await Promise.all(commandsFor(process.argv.slice(2)).map((c) => c.load()))
    for (const m of modules) m.register(program)
    const override = (c: Commander.Command, path: string): void => {
      c.exitOverride((err) => {
        throw Object.assign(err, { commandPath: path, operands: [...c.args] })
      })
      c.configureOutput({ outputError: () => {}, writeErr: () => {} })
      for (const sub of c.commands) override(sub, `${path} ${sub.name()}`)
    }
    override(program, '')
    await program.parseAsync(process.argv)
  }

  /**
   * A usage error from commander as one line `<what>: <why> (run lading ... --help for usage)`:
   * its messages start with "error: " and may carry a second line ("(Did you mean --x?)").
   */
  function usageLine(e: Commander.CommanderError): string {
    const { commandPath: path = '', operands = [] } = e as { commandPath?: string; operands?: string[] }
    // 'commander.help' with an error status: no command given, or `help NAME` for an unknown NAME.
    const why =
      e.code !== 'commander.help'
        ? e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ')
        : operands.length === 0
          ? 'no command given'
          : `unknown command ${JSON.stringify(operands.at(-1))}`
    return `${path ? `${path.trim()}: ` : ''}${why} (run lading${path} --help for usage)`
  }

  // SIGINT/SIGTERM: stop the running command (its interrupt hooks), remove every temp file and
  // directory still tracked (src/io/cleanup.ts), say so in one line, and exit as a shell reports
  // a signal (128 + its number). A second signal does not wait for the hooks.
  const onSignal = (sig: NodeJS.Signals): void => {
    const claimed = signalClaim()
    if (claimed && !isInterrupting()) return claimed(sig)
    const status = sig === 'SIGINT' ? 130 : 143
    if (isInterrupting()) {
      sweepTrackedSync()
      process.exit(status)
    }
    void interruptAll(INTERRUPT_HOOKS_MS).then(
      ({ removed, notes }) => {
        const what = [`removed ${removed} temporary file${removed === 1 ? '' : 's'}`, ...notes].join('; ')
        process.stderr.write(`lading: interrupted by ${sig}: ${what}\n`)
        process.exit(status)
      },
      () => process.exit(status),
    )
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0)
    fail(e)
  })
  process.on('unhandledRejection', fail)
  let finished = false
  // Node exits (status 0) when nothing is left to wait for, even if a command is still awaiting a
  // promise that can no longer settle: that is a bug, and must never look like success.
  process.on('beforeExit', () => {
    if (!finished) fail(new Error('the command stopped before it finished (a promise that never settles)'))
  })
  // Once the command has finished, exit at once instead of letting Node tear the heap and its
  // threads down (2-3 ms of every command). Output is already written: stdout and stderr writes
  // to files, pipes and terminals are synchronous on Linux, and every command awaits its own work.
  main().then(() => {
    finished = true
    // Interrupted just as it finished: the signal handler reports and exits.
    if (!isInterrupting()) process.exit()
  }, fail)
}
