/**
 * `lading serve` beside docker-registry 2.8 (Debian's), in one run, interleaved, both storing on
 * the same medium, with the same clients (issue 12's targets):
 *
 * - skopeo push of the Debian minbase image into an empty server: Lading's time <= 0.8x;
 * - skopeo pull of it from each server into an OCI layout: <= 0.8x;
 * - 64 connections: manifest GETs (wrk, 2 threads) and blob HEADs (lib/head-load.ts) per second,
 *   >= 3x, with each server's p99 latency;
 * - peak RSS of the server process (VmHWM in /proc) under a push storm of 8 concurrent skopeo
 *   pushes: Lading's under 200 MB.
 *
 * The servers are processes of their own (bin/lading serve, docker-registry serve); the clients
 * are the same binaries for both, so the ratios compare the servers. A server that fails to start
 * or answers wrongly fails its scenario (nothing is faked). Run by bench/run.ts (--only serve).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { headLoad } from './lib/head-load.js'
import { measure, median, run } from './lib/measure.js'
import { Registry, REGISTRY_BIN, stopChild } from './lib/registry.js'

export interface ServeBenchOptions {
  /** argv prefix that runs lading. */
  lading: string[]
  /** The fixture layout (tag minbase). */
  layout: string
  /** Work directory (tmpfs). */
  dir: string
  reps: number
  quick: boolean
}

interface Server {
  label: string
  host: string
  pid: number | undefined
  /** Start with empty storage. */
  start(): Promise<void>
  stop(): Promise<void>
}

class LadingServer implements Server {
  readonly label = 'lading serve'
  host = ''
  #child: ChildProcess | undefined
  constructor(
    private readonly argv: string[],
    private readonly dir: string,
  ) {}
  get pid(): number | undefined {
    return this.#child?.pid
  }

  async start(): Promise<void> {
    await this.stop()
    const root = path.join(this.dir, 'root')
    rmSync(root, { recursive: true, force: true })
    const child = spawn(this.argv[0]!, [...this.argv.slice(1), 'serve', '--root', root, '--listen', '127.0.0.1:0', '--access-log', 'off'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    this.#child = child
    this.host = await new Promise<string>((resolve, reject) => {
      let out = ''
      const t = setTimeout(() => reject(new Error(`lading serve did not start: ${out}`)), 15_000)
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString()
        const m = /http:\/\/(127\.0\.0\.1:\d+)/.exec(out)
        if (m) {
          clearTimeout(t)
          resolve(m[1]!)
        }
      })
      child.once('exit', (code) => {
        clearTimeout(t)
        reject(new Error(`lading serve exited ${code}: ${out}`))
      })
    })
  }

  async stop(): Promise<void> {
    const child = this.#child
    this.#child = undefined
    await stopChild(child, 5000)
  }
}

class DistributionServer implements Server {
  readonly label = 'docker-registry'
  readonly #reg: Registry
  constructor(dir: string) {
    this.#reg = new Registry(dir)
  }
  get host(): string {
    return this.#reg.host
  }
  get pid(): number | undefined {
    return this.#reg.pid
  }
  start(): Promise<void> {
    return this.#reg.start()
  }
  stop(): Promise<void> {
    return this.#reg.stop()
  }
}

/** Peak RSS of a live process in MiB (VmHWM). */
function peakRssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}

function skopeoPush(layout: string, host: string, repo: string): string[] {
  return ['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:minbase`, `docker://${host}/${repo}:v1`]
}

interface WrkResult {
  rps: number
  p99Ms: number
}

function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out)
  if (!rps || !p99) throw new Error(`unexpected wrk output: ${out.slice(0, 400)}`)
  const unit = { us: 0.001, ms: 1, s: 1000 }[p99[2] as 'us' | 'ms' | 's']
  return { rps: Number(rps[1]), p99Ms: Number(p99[1]) * unit }
}

/** wrk GETs (Debian's wrk 4.1 cannot time HEADs: lib/head-load.ts says why). */
function wrk(url: string, accept: string, seconds: number): WrkResult {
  const out = run(['wrk', '-t2', '-c64', `-d${seconds}s`, '--latency', '-H', `Accept: ${accept}`, url])
  // wrk counts non-2xx answers apart; a server answering errors fast must not win.
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`${url}: wrk saw error responses:\n${out}`)
  return parseWrk(out)
}

interface Line {
  scenario: string
  lading: string
  peer: string
  ratio?: number
  target: string
  met: string
}

function fmt(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`
}

export async function runServeBench(o: ServeBenchOptions): Promise<void> {
  const lines: Line[] = []
  const say = (l: Line): void => {
    lines.push(l)
    process.stdout.write(
      `[shm] ${l.scenario}: lading ${l.lading} vs docker-registry ${l.peer}${l.ratio === undefined ? '' : ` = ${l.ratio.toFixed(2)}x`} -> ${l.met}\n`,
    )
  }
  if (!existsSync(REGISTRY_BIN)) {
    process.stdout.write(`serve: ${REGISTRY_BIN} not installed: the serve scenarios need it\n`)
    return
  }
  const lading = new LadingServer(o.lading, path.join(o.dir, 'lading'))
  const dist = new DistributionServer(path.join(o.dir, 'distribution'))
  const servers: Server[] = [lading, dist]
  mkdirSync(path.join(o.dir, 'lading'), { recursive: true })
  try {
    const reps = o.quick ? o.reps : Math.max(o.reps, 7)
    // skopeo push into an empty server, restarted (untimed) before each push.
    const push: Record<string, number[]> = { lading: [], peer: [] }
    for (let i = 0; i < reps; i++) {
      for (const [k, s] of [
        ['lading', lading],
        ['peer', dist],
      ] as const) {
        await s.start()
        push[k]!.push((await measure(skopeoPush(o.layout, s.host, 'bench/push'))).ms)
      }
    }
    const pushRatio = median(push.lading!.map((ms, i) => ms / push.peer![i]!))
    say({
      scenario: 'skopeo push (minbase)',
      lading: fmt(median(push.lading!)),
      peer: fmt(median(push.peer!)),
      ratio: pushRatio,
      target: '<= 0.8x',
      met: pushRatio <= 0.8 ? 'yes' : 'NO',
    })

    // skopeo pull from each (both hold the image from the last push).
    const pull: Record<string, number[]> = { lading: [], peer: [] }
    const out = path.join(o.dir, 'pull-out')
    for (let i = 0; i < reps; i++) {
      for (const [k, s] of [
        ['lading', lading],
        ['peer', dist],
      ] as const) {
        rmSync(out, { recursive: true, force: true })
        pull[k]!.push((await measure(['skopeo', 'copy', '--quiet', '--src-tls-verify=false', `docker://${s.host}/bench/push:v1`, `oci:${out}:v1`])).ms)
      }
    }
    rmSync(out, { recursive: true, force: true })
    const pullRatio = median(pull.lading!.map((ms, i) => ms / pull.peer![i]!))
    say({
      scenario: 'skopeo pull (minbase)',
      lading: fmt(median(pull.lading!)),
      peer: fmt(median(pull.peer!)),
      ratio: pullRatio,
      target: '<= 0.8x',
      met: pullRatio <= 0.8 ? 'yes' : 'NO',
    })

    // wrk: requests per second on a manifest GET and a blob HEAD.
    const manifest = JSON.parse(run(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${lading.host}/bench/push:v1`])) as {
      layers: Array<{ digest: string }>
    }
    const layer = manifest.layers[0]!.digest
    const seconds = o.quick ? 3 : 5
    const wrkReps = o.quick ? 1 : 3
    for (const [name, pathPart] of [
      ['manifest GET (wrk -c64)', 'manifests/v1'],
      ['blob HEAD (64 connections)', `blobs/${layer}`],
    ] as const) {
      const got: Record<string, WrkResult[]> = { lading: [], peer: [] }
      for (let i = 0; i < wrkReps; i++) {
        for (const [k, s] of [
          ['lading', lading],
          ['peer', dist],
        ] as const) {
          if (pathPart.startsWith('manifests/')) {
            got[k]!.push(wrk(`http://${s.host}/v2/bench/push/${pathPart}`, 'application/vnd.oci.image.manifest.v1+json', seconds))
          } else {
            const [h, port] = s.host.split(':')
            const r = await headLoad(h!, Number(port), `/v2/bench/push/${pathPart}`, 64, seconds)
            if (r.errors > 0) throw new Error(`${s.label}: ${r.errors} blob HEADs failed`)
            got[k]!.push(r)
          }
        }
      }
      const l = { rps: median(got.lading!.map((r) => r.rps)), p99: median(got.lading!.map((r) => r.p99Ms)) }
      const p = { rps: median(got.peer!.map((r) => r.rps)), p99: median(got.peer!.map((r) => r.p99Ms)) }
      const ratio = l.rps / p.rps
      say({
        scenario: name,
        lading: `${l.rps.toFixed(0)} req/s, p99 ${l.p99.toFixed(2)} ms`,
        peer: `${p.rps.toFixed(0)} req/s, p99 ${p.p99.toFixed(2)} ms`,
        ratio,
        target: '>= 3x req/s',
        met: ratio >= 3 ? 'yes' : 'NO',
      })
    }

    // Push storm: 8 concurrent skopeo pushes into a fresh server; the server's peak RSS.
    const storm: Record<string, { ms: number; rss: number | undefined }> = {}
    for (const [k, s] of [
      ['lading', lading],
      ['peer', dist],
    ] as const) {
      await s.start()
      const t0 = Date.now()
      await Promise.all(Array.from({ length: 8 }, (_, i) => measure(skopeoPush(o.layout, s.host, `storm/r${i}`))))
      storm[k] = { ms: Date.now() - t0, rss: peakRssMiB(s.pid) }
    }
    const lr = storm.lading!.rss
    say({
      scenario: 'push storm, 8 x skopeo: server peak RSS',
      lading: `${lr?.toFixed(0) ?? '?'} MB (${fmt(storm.lading!.ms)})`,
      peer: `${storm.peer!.rss?.toFixed(0) ?? '?'} MB (${fmt(storm.peer!.ms)})`,
      ratio: storm.lading!.ms / storm.peer!.ms,
      target: 'RSS < 200 MB',
      met: lr !== undefined && lr < 200 ? 'yes' : 'NO',
    })
  } catch (e) {
    process.stdout.write(`serve: FAILED: ${(e as Error).message}\n`)
  } finally {
    for (const s of servers) await s.stop()
  }
  if (lines.length) {
    process.stdout.write('\nscenario | lading serve | docker-registry | ratio | target | met\n')
    for (const l of lines)
      process.stdout.write(`${l.scenario} | ${l.lading} | ${l.peer} | ${l.ratio === undefined ? '-' : `${l.ratio.toFixed(2)}x`} | ${l.target} | ${l.met}\n`)
  }
}
