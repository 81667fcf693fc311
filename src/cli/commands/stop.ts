/** `lading stop CONTAINER...` (also `lading container stop`): SIGTERM (or --signal), then SIGKILL after --time. */
import type { Command } from 'commander'
import { addStoreOption, openStore, type StoreFlag } from '../store-options.js'
import { usage } from '../util.js'

export function defineStop(cmd: Command): Command {
  return addStoreOption(
    cmd
      .description('stop running containers: a signal to their init, then SIGKILL after a timeout')
      .argument('<containers...>', 'names or ids')
      .option('-t, --time <seconds>', 'seconds to wait before SIGKILL (default 10)')
      .option('-s, --signal <sig>', "the signal to send first (default: the image's StopSignal, else TERM)"),
  ).action(async (names: string[], f: StoreFlag & { time?: string; signal?: string }) => {
    const t = f.time === undefined ? 10 : Number(f.time)
    if (!Number.isFinite(t) || t < 0 || t > 86400) throw usage(`--time: expected seconds from 0 to 86400, got ${JSON.stringify(f.time)}`)
    if (f.signal !== undefined && !/^(?:SIG)?[A-Z0-9+-]{1,12}$|^\d{1,2}$/i.test(f.signal)) throw usage(`--signal: invalid signal ${JSON.stringify(f.signal)}`)
    const { findContainer, stopContainer, containerDir } = await import('../../run/containers.js')
    const store = await openStore(f)
    for (const n of names) {
      const c = await findContainer(store, n)
      let signal = f.signal?.replace(/^SIG/i, '')
      if (signal === undefined) {
        // conversion.md §Annotation Fields: Config.StopSignal -> org.opencontainers.image.stopSignal.
        const fs = await import('node:fs/promises')
        const spec = JSON.parse(await fs.readFile(`${containerDir(store, c.id)}/config.json`, 'utf8').catch(() => '{}')) as {
          annotations?: Record<string, string>
        }
        signal = spec.annotations?.['org.opencontainers.image.stopSignal']?.replace(/^SIG/i, '') ?? 'TERM'
      }
      await stopContainer(store, c, { signal, timeoutMs: t * 1000 })
      process.stdout.write(`${c.name}\n`)
    }
  })
}

export function register(program: Command): void {
  defineStop(program.command('stop'))
}
