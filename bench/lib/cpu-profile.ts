/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and totals self time per function, to point at
 * bottlenecks without opening a profiler UI. Self time of a node = the sum of the time deltas of
 * the samples that landed in it.
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface HotSpot {
  name: string
  selfMs: number
  share: number
}

export function summarizeProfile(file: string, top = 12): { totalMs: number; spots: HotSpot[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  let total = 0
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]
    const n = id === undefined ? undefined : byId.get(id)
    const dt = (p.timeDeltas[i] ?? 0) / 1000
    total += dt
    if (!n) continue
    const f = n.callFrame
    const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(build|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : ''
    const key = `${f.functionName || '(anonymous)'}${where ? ' ' + where : ''}`
    self.set(key, (self.get(key) ?? 0) + dt)
  }
  const spots = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, ms]) => ({ name, selfMs: ms, share: total ? ms / total : 0 }))
  return { totalMs: total, spots }
}
