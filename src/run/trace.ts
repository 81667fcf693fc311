/**
 * LADING_TRACE=1: `lading run` writes the time of each phase (ms since the process started) on
 * stderr, to find where a run's time goes (issue 14's benchmark). The variable is read when a
 * run starts, never at module load (the CLI runs from a startup snapshot, see README Design).
 */
import { performance } from 'node:perf_hooks'

export type Trace = (phase: string) => void

const off: Trace = () => {}

export function runTrace(): Trace {
  if (process.env.LADING_TRACE !== '1') return off
  return (phase) => {
    process.stderr.write(`lading: trace ${performance.now().toFixed(1)} ms ${phase}\n`)
  }
}
