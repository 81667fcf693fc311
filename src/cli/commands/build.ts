/**
 * `lading build [-f Dockerfile] [-t DEST]... CONTEXT`: a Dockerfile to an OCI image without a
 * daemon, RUN steps through runc (src/build). The image is written to every -t destination (any
 * copy-engine reference) only after the whole build succeeded. Progress goes to stderr; stdout
 * gets the image ID (the config digest, as docker and buildah print it).
 */
import type { Command } from 'commander'
import { collect, usage, whileInterruptible } from '../util.js'

interface BuildFlags {
  file?: string
  tag?: string[]
  buildArg?: string[]
  target?: string
  platform?: string
  cache?: boolean
  network?: string
  secret?: string[]
  progress?: string
  iidfile?: string
  digestfile?: string
  cacheDir?: string
  timestamp?: string
  tlsVerify?: string | boolean
  certDir?: string
  creds?: string
  authfile?: string
}

export function register(program: Command): void {
  program
    .command('build')
    .description('build an image from a Dockerfile (RUN steps run with runc; no daemon)')
    .argument('<context>', 'the build context directory')
    .option('-f, --file <dockerfile>', 'the Dockerfile (default CONTEXT/Dockerfile)')
    .option('-t, --tag <dest>', 'write the image here: oci:DIR:TAG, oci-archive:, docker-archive:, docker://... (repeatable)', collect)
    .option('--build-arg <k=v>', 'set a build argument (K alone takes the value from the environment) (repeatable)', collect)
    .option('--target <stage>', 'build this stage (default the last)')
    .option('--platform <os/arch[/variant]>', "the platform to build for (default the host's)")
    .option('--no-cache', 'run every step again (the results still go into the cache)')
    .option('--network <none|host>', 'network for RUN steps (default none: only loopback)')
    .option('--secret <id=ID,src=FILE>', 'a secret for RUN --mount=type=secret (repeatable)', collect)
    .option('--progress <plain|tty|json>', 'plain: steps and RUN output; tty: steps only; json: one event per line (default plain)')
    .option('--iidfile <file>', 'write the image ID (config digest) to this file')
    .option('--digestfile <file>', 'write the manifest digest to this file')
    .option('--cache-dir <dir>', 'the build cache, an OCI layout (default ~/.cache/lading/build)')
    .option('--timestamp <epoch|date>', 'reproducible output: history dates and file times clamped (default $SOURCE_DATE_EPOCH)')
    .option('--tls-verify [bool]', 'registries: verify TLS; false also allows plain HTTP (default true)')
    .option('--cert-dir <dir>', 'registries: *.crt CAs and *.cert/*.key client certificate')
    .option('--creds <user:pass>', 'registry credentials')
    .option('--authfile <file>', 'registry auth file')
    .action(async (context: string, f: BuildFlags) => {
      const [{ build, exportImage }, { parseReference }, { parsePlatform }, { registryOptionsFromFlags }, { mtimeClamp }, { atomicWriteFile }] =
        await Promise.all([
          import('../../build/builder.js'),
          import('../../transport/reference.js'),
          import('../../spec/platform.js'),
          import('../../transport/registry/cli-options.js'),
          import('./repack.js'),
          import('../../io/fs.js'),
        ])
      // Every flag is checked before anything runs.
      const dests = (f.tag ?? []).map((t) => parseReference(t))
      const buildArgs: Record<string, string> = {}
      for (const a of f.buildArg ?? []) {
        const eq = a.indexOf('=')
        if (eq === 0) throw usage(`--build-arg ${JSON.stringify(a)}: expected KEY=VALUE`)
        if (eq < 0) {
          const v = process.env[a]
          if (v !== undefined) buildArgs[a] = v
        } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1)
      }
      const secrets: Record<string, string> = {}
      for (const s of f.secret ?? []) {
        const kv = new Map(
          s.split(',').map((p) => {
            const i = p.indexOf('=')
            return [i < 0 ? p : p.slice(0, i), i < 0 ? '' : p.slice(i + 1)] as [string, string]
          }),
        )
        const id = kv.get('id')
        const src = kv.get('src') ?? kv.get('source')
        if (!id || !src) throw usage(`--secret ${JSON.stringify(s)}: expected id=ID,src=FILE`)
        secrets[id] = src
      }
      if (f.network !== undefined && f.network !== 'none' && f.network !== 'host')
        throw usage(`--network: expected none or host, got ${JSON.stringify(f.network)}`)
      const progress = f.progress ?? 'plain'
      if (!['plain', 'tty', 'json'].includes(progress)) throw usage(`--progress: expected plain, tty or json, got ${JSON.stringify(progress)}`)
      const timestamp = mtimeClamp(f.timestamp)
      const transport = registryOptionsFromFlags({ tlsVerify: f.tlsVerify, certDir: f.certDir, creds: f.creds, authfile: f.authfile })

      const err = process.stderr
      const onEvent = (e: import('../../build/builder.js').BuildEvent): void => {
        if (progress === 'json') {
          err.write(JSON.stringify(e.type === 'output' ? { type: 'output', text: e.data.toString('utf8') } : e) + '\n')
          return
        }
        if (e.type === 'step') err.write(`[${e.stage}] STEP ${e.index}/${e.total}: ${e.text}${e.cached ? ' (cached)' : ''}\n`)
        else if (e.type === 'output' && progress === 'plain') err.write(e.data)
        else if (e.type === 'warning') err.write(`lading: warning: ${e.message}\n`)
      }
      // SIGINT/SIGTERM abort the build through the CLI's interrupt hooks (src/io/cleanup.ts): it
      // stops its RUN, removes its container and work tree, then the CLI reports and exits 130/143.
      await whileInterruptible(async (signal) => {
        const result = await build({
          context,
          ...(f.file !== undefined ? { dockerfile: f.file } : {}),
          buildArgs,
          ...(f.target !== undefined ? { target: f.target } : {}),
          ...(f.platform !== undefined ? { platform: parsePlatform(f.platform) } : {}),
          ...(f.cache === false ? { noCache: true } : {}),
          ...(f.network !== undefined ? { network: f.network as 'none' | 'host' } : {}),
          secrets,
          ...(f.cacheDir !== undefined ? { cacheDir: f.cacheDir } : {}),
          ...(timestamp ? { timestamp } : {}),
          transport,
          onEvent,
          signal,
        })
        const written = await exportImage(result, dests, transport)
        if (progress !== 'json') {
          for (const w of written) err.write(`wrote ${w.ref} ${w.digest}\n`)
          err.write(`${result.stepsRun} step(s) run, ${result.stepsCached} cached, ${result.layersWritten} layer(s) written\n`)
        }
        if (f.iidfile !== undefined) await atomicWriteFile(f.iidfile, result.imageId)
        if (f.digestfile !== undefined) await atomicWriteFile(f.digestfile, written[0]?.digest ?? result.manifest.digest)
        if (progress === 'json')
          err.write(
            JSON.stringify({
              type: 'done',
              imageId: result.imageId,
              manifest: result.manifest.digest,
              written,
              stepsRun: result.stepsRun,
              stepsCached: result.stepsCached,
              layersWritten: result.layersWritten,
            }) + '\n',
          )
        process.stdout.write(`${result.imageId}\n`)
      }, 'build')
    })
}
