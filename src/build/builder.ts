/**
 * `lading build`: a Dockerfile and a build context to an OCI image, without a daemon.
 *
 * Every step's result is an image in the build cache (an OCI image layout, `--cache-dir`, default
 * ~/.cache/lading/build): a step that changes files adds one layer (layer/diff of the stage's root
 * filesystem against its snapshot, appended with bundle/append-layer, as `lading repack` does); a
 * step that changes only the config adds a history entry with empty_layer. The cache key of a step
 * (DESIGN.md §Lessons, BuildKit and buildah) is the digest of: the parent step's key, the expanded
 * instruction, the values of the build args it can see, and the content digests of its COPY/ADD
 * inputs. A hit takes the cached image and runs nothing; the root filesystem is materialised
 * only when a step must really run (unpacked from the cached image's layers), so a rebuild with
 * nothing changed runs no RUN and writes no layer.
 *
 * Results are written to the destinations (`-t`) by the copy engine only once every stage
 * succeeded: a failing build tags nothing. Each cache entry is a tag of the cache layout
 * (`cache-<key>`), moved only after the image it names is complete.
 *
 * History and config as BuildKit (`docker build`) records them: created_by is `RUN /bin/sh -c
 * CMD # buildkit` for RUN (with `|N K=V ...` before the shell when build args are in scope),
 * `COPY SRC DEST # buildkit` and `ADD ... # buildkit`, and the instruction itself for the others;
 * empty_layer for steps that change no file.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { digestOf, type Digest } from '../digest/digest.js'
import { LadingError, isLadingError } from '../errors.js'
import { appendLayer } from '../bundle/append-layer.js'
import { removeTree } from '../bundle/cleanup.js'
import { IdRemapStream, inverseMapper } from '../bundle/id-remap.js'
import { openUpDirs, restoreDirs, withOpenedModes, withOriginalModes } from '../bundle/rootless-access.js'
import { rootFileReader } from '../bundle/root-file.js'
import { DEFAULT_PATH } from '../bundle/runtime-config.js'
import type { RuntimeMount } from '../bundle/runtime-types.js'
import { applyImageLayers } from '../bundle/unpack.js'
import { hintTreeParent } from '../io/native-fs.js'
import { parseGroup, parsePasswd, resolveUser } from '../bundle/user.js'
import { copyImage } from '../copy/copy.js'
import { processAlive } from '../io/fs.js'
import { withLock } from '../io/lock.js'
import { diffLayer } from '../layer/diff.js'
import { takeSnapshot, type Snapshot } from '../layer/snapshot.js'
import { normalizePort } from '../spec/config-edit.js'
import { MediaType } from '../spec/media-types.js'
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from '../spec/platform.js'
import type { Descriptor, History, ImageConfig, Manifest, Platform } from '../spec/types.js'
import { writeImage } from '../store/image.js'
import { Layout } from '../store/layout.js'
import { resolveImage, type ResolvedImage } from '../store/resolve.js'
import { openDestination, openSource, type TransportOptions } from '../transport/open.js'
import { formatReference, parseReference } from '../transport/reference.js'
import type { ImageReference } from '../transport/types.js'
import { applyCopy, canonicalPath, extractInto, isDirectoryIn, openArchive, type CopyAttrs, type DataFile, type Placement } from './copy-step.js'
import { dockerfileError, parseDockerfile, parseInstruction, type Dockerfile, type Instruction } from './dockerfile/parse.js'
import { expandHeredoc, splitWords, type Lookup } from './dockerfile/words.js'
import { IgnoreRules } from './dockerignore.js'
import { linkBlobs } from './link-blobs.js'
import { runStep } from './run-step.js'
import { contentDigest, fileDigest, itemsOf, resolveSources, type SourceRoot } from './sources.js'
import { PROXY_ARGS, argDeclarations, expandAt, findStage, globalArgValues, planStages, platformArgs, stageOrder, type Stage, type StagePlan } from './stages.js'

export type BuildEvent =
  | { type: 'step'; stage: string; index: number; total: number; text: string; cached: boolean }
  | { type: 'output'; data: Buffer }
  | { type: 'warning'; message: string }
  | { type: 'stage-done'; stage: string; digest: string }

export interface BuildOptions {
  context: string
  /** The Dockerfile (default CONTEXT/Dockerfile). */
  dockerfile?: string
  buildArgs?: Record<string, string>
  target?: string
  platform?: Platform
  noCache?: boolean
  network?: 'none' | 'host'
  /** --secret id=ID,src=FILE */
  secrets?: Record<string, string>
  cacheDir?: string
  /** SOURCE_DATE_EPOCH / --timestamp: history and config dates, and the clamp for file times. */
  timestamp?: Date
  transport?: TransportOptions
  onEvent?: (e: BuildEvent) => void
  signal?: AbortSignal
}

export interface BuildResult {
  /** The cache layout holding the image. */
  layout: string
  manifest: Descriptor
  /** The image ID (the config's digest), as docker and buildah print it. */
  imageId: Digest
  stepsRun: number
  stepsCached: number
  layersWritten: number
}

/** The default cache: $XDG_CACHE_HOME/lading/build or ~/.cache/lading/build. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache')
  return path.join(base, 'lading', 'build')
}

interface CurrentImage { manifest: Manifest; config: ImageConfig; desc: Descriptor }

/** The root filesystem of a stage, as far as layers have been applied to it. */
interface Tree { dir: string; rootfs: string; layers: string[]; snapshot: Snapshot }

interface StageState {
  stage: Stage
  label: string
  image: CurrentImage
  key: string
  tree?: Tree
  /** Declared ARGs of the stage with their values (undefined = declared without a value). */
  args: Map<string, string | undefined>
  /** CMD given in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean
  /** An unpack started ahead of need (see #speculate). */
  materializing?: Promise<unknown>
}

const DEFAULT_SHELL = ['/bin/sh', '-c']

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const b = new Builder(opts)
  try {
    return await b.run()
  } finally {
    await b.cleanup()
  }
}

class Builder {
  readonly #o: BuildOptions
  #context: string
  readonly #cacheDir: string
  readonly #layoutDir: string
  readonly #work: string
  readonly #target: Platform
  readonly #buildArgs: Map<string, string>
  /** Not root: unpack without ownership, RUN in runc's rootless mode, ids mapped back in layers. */
  readonly #rootless = process.getuid?.() !== 0
  #layout!: Layout
  #df!: Dockerfile
  #plan!: StagePlan
  #globals = new Map<string, string>()
  #ignore: IgnoreRules | undefined
  #done = new Map<Stage, StageState>()
  #stepsRun = 0
  #stepsCached = 0
  #layers = 0
  #seq = 0

  constructor(o: BuildOptions) {
    this.#o = o
    this.#context = path.resolve(o.context)
    this.#cacheDir = path.resolve(o.cacheDir ?? defaultCacheDir())
    // CACHE/layout is the OCI layout of step results; CACHE/mounts holds RUN cache mounts;
    // CACHE/work/<pid>-<random> this build's root filesystems, removed when it ends.
    this.#layoutDir = path.join(this.#cacheDir, 'layout')
    this.#work = path.join(this.#cacheDir, 'work', `${process.pid}-${randomBytes(4).toString('hex')}`)
    this.#target = o.platform ?? hostPlatform()
    this.#buildArgs = new Map(Object.entries(o.buildArgs ?? {}))
  }

  async cleanup(): Promise<void> {
    // An unpack started ahead of need may still be writing: let it end before removing its tree.
    await Promise.allSettled([...this.#pending])
    await removeTree(this.#work).catch(() => {})
  }

  #pending = new Set<Promise<unknown>>()

  /** Marker files: a step was cached with this parent key (so a rebuild may hit the cache after it). */
  #childMarker(parentKey: string): string {
    return path.join(this.#cacheDir, 'children', parentKey.replace(/^sha256:/, ''))
  }

  #markParent(parentKey: string): void {
    const f = this.#childMarker(parentKey)
    fs.mkdirSync(path.dirname(f), { recursive: true })
    fs.writeFileSync(f, '')
  }

  /**
   * When nothing was ever cached after this stage's base, its first real step will miss the cache
   * and need the root filesystem: start unpacking it now, beside the work that computes that
   * step's key (hashing COPY sources). A warm cache never unpacks ahead.
   */
  #speculate(s: StageState): void {
    if (!this.#o.noCache && fs.existsSync(this.#childMarker(s.key))) return
    if (s.image.manifest.layers.length === 0) return
    const p = this.#materialize(s)
    p.catch(() => {})
    s.materializing = p
    this.#pending.add(p)
    void p.finally(() => this.#pending.delete(p)).catch(() => {})
  }

  #emit(e: BuildEvent): void { this.#o.onEvent?.(e) }

  #created(): string {
    return (this.#o.timestamp ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z')
  }

  async run(): Promise<BuildResult> {
    let st: fs.Stats
    try { st = fs.statSync(this.#context) } catch { throw new LadingError('NOT_FOUND', `build context ${this.#context}: no such directory`) }
    if (!st.isDirectory()) throw new LadingError('USAGE', `build context ${this.#context}: not a directory`)
    this.#context = fs.realpathSync(this.#context)
    const dfPath = this.#o.dockerfile ?? path.join(this.#context, 'Dockerfile')
    let text: string
    try { text = fs.readFileSync(dfPath, 'utf8') } catch (e) { throw new LadingError('NOT_FOUND', `${dfPath}: cannot read the Dockerfile: ${(e as Error).message}`) }
    // Messages name the Dockerfile as the user knows it: relative to the context when inside it.
    const rel = path.relative(this.#context, path.resolve(dfPath))
    this.#df = parseDockerfile(text, rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : dfPath)
    this.#plan = planStages(this.#df)
    this.#ignore = readIgnore(this.#context)
    this.#globals = globalArgValues(this.#plan, this.#df.file, this.#df.escape, this.#buildArgs, platformArgs(this.#target, hostPlatform()))
    const order = stageOrder(this.#plan, this.#df.file, this.#df.escape, (n) => this.#globals.get(n), this.#o.target)

    fs.mkdirSync(this.#layoutDir, { recursive: true })
    this.#layout = await Layout.init(this.#layoutDir)
    await removeStaleWork(path.dirname(this.#work))
    // Each build's work directory has a unique name: spread them over the file system.
    fs.mkdirSync(path.dirname(this.#work), { recursive: true })
    hintTreeParent(path.dirname(this.#work))
    fs.mkdirSync(this.#work)

    let last: StageState | undefined
    for (const stage of order) {
      last = await this.#buildStage(stage)
      this.#done.set(stage, last)
      this.#emit({ type: 'stage-done', stage: last.label, digest: last.image.desc.digest })
    }
    const fin = last!
    return {
      layout: this.#layoutDir,
      manifest: fin.image.desc,
      imageId: fin.image.manifest.config.digest,
      stepsRun: this.#stepsRun,
      stepsCached: this.#stepsCached,
      layersWritten: this.#layers,
    }
  }

  #err(ins: Instruction, msg: string): LadingError {
    return dockerfileError(this.#df.file, ins.line, ins.column, msg)
  }

  // ---- stages -------------------------------------------------------------------------------

  async #buildStage(stage: Stage): Promise<StageState> {
    const label = stage.name ?? String(stage.index)
    const total = stage.instructions.length + 1
    const globals: Lookup = (n) => this.#globals.get(n)
    const baseName = expandAt(this.#df.file, stage.from, stage.base, globals, this.#df.escape)
    let platform = this.#target
    const pf = stage.from.flags.find((f) => f.name === 'platform')?.value
    if (pf !== undefined) platform = parsePlatform(expandAt(this.#df.file, stage.from, pf, globals, this.#df.escape))
    let image: CurrentImage
    let key: string
    // FROM counts as cached unless the base image had to be fetched into the cache.
    let fetched = false
    const parent = findStage(this.#plan, baseName, stage.index)
    if (parent) {
      const p = this.#done.get(parent)
      if (!p) throw this.#err(stage.from, `stage ${baseName} is not built yet`)
      image = p.image
      key = p.key
    } else if (baseName.toLowerCase() === 'scratch') {
      image = await this.#scratch(platform)
      key = digestOf(JSON.stringify(['scratch', formatPlatform(platform)]))
    } else {
      const pulled = await this.#pull(stage.from, baseName, platform)
      image = pulled.image
      fetched = pulled.copied > 0
      key = digestOf(JSON.stringify(['from', image.desc.digest]))
    }
    this.#emit({ type: 'step', stage: label, index: 1, total, text: stage.from.text, cached: !fetched })
    if (fetched) this.#stepsRun++
    else this.#stepsCached++
    const s: StageState = { stage, label, image, key, args: new Map(), cmdSet: false }
    this.#speculate(s)
    // ONBUILD triggers of the base image run first (the Dockerfile reference §ONBUILD), then are cleared.
    const triggers = Array.isArray(image.config.config?.OnBuild) ? (image.config.config.OnBuild as unknown[]).filter((t): t is string => typeof t === 'string') : []
    if (triggers.length > 0) {
      // The new image does not inherit the triggers; dropping them records no history (as docker build).
      const cfg = structuredClone(image.config)
      cfg.config = { ...(cfg.config ?? {}) }
      delete cfg.config.OnBuild
      const desc = await writeImage(this.#layout, { config: cfg, manifest: image.manifest })
      s.image = { manifest: image.manifest, config: cfg, desc }
      s.key = this.#keyFor(s, ['onbuild-cleared'])
      for (const t of triggers) {
        const ins = parseInstruction(t, `${this.#df.file} (ONBUILD of ${baseName})`, stage.from.line, stage.from.column, this.#df.escape, true)
        await this.#step(s, ins)
      }
    }
    let n = 1
    for (const ins of stage.instructions) {
      if (this.#o.signal?.aborted) throw new LadingError('CONFLICT', 'interrupted')
      n++
      await this.#step(s, ins, { index: n, total })
    }
    return s
  }

  async #scratch(platform: Platform): Promise<CurrentImage> {
    // BuildKit gives a scratch stage the default PATH, so RUN steps and the image find programs.
    const config: ImageConfig = {
      architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: [DEFAULT_PATH] }, rootfs: { type: 'layers', diff_ids: [] }, history: [],
    }
    const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: digestOf('{}'), size: 2 }, layers: [] }
    const desc = await writeImage(this.#layout, { config, manifest })
    return this.#load(desc.digest)
  }

  async #load(digest: Digest): Promise<CurrentImage> {
    const r = await resolveImage(this.#layout, { digest }, 'any')
    return { manifest: r.manifest, config: r.config, desc: r.manifestDescriptor }
  }

  /** A FROM image: copied into the cache layout (blobs already there are skipped) and resolved. */
  async #pull(ins: Instruction, name: string, platform: Platform): Promise<{ image: CurrentImage; copied: number }> {
    let ref: ImageReference
    try {
      ref = /^(oci|oci-archive|docker-archive|dir):/.test(name) || name.startsWith('docker://') ? parseReference(name) : parseReference(`docker://${name}`)
    } catch (e) {
      throw this.#err(ins, `FROM ${name}: ${(e as Error).message}`)
    }
    const tag = `base-${digestOf(JSON.stringify([formatReference(ref), formatPlatform(platform)])).slice(7, 71)}`
    if (ref.transport === 'oci') {
      // Same filesystem: the base image's blobs are linked into the cache, not copied.
      const from = await Layout.open(ref.dir).catch(() => undefined)
      const img = from && await resolveImage(from, ref.digest ?? ref.tag ?? 'latest', platform).catch(() => undefined)
      if (from && img) await linkBlobs(from, this.#layout, [img.manifest.config, ...img.manifest.layers])
    }
    const src = await openSource(ref, this.#o.transport ?? {})
    try {
      const dest = await openDestination({ transport: 'oci', dir: this.#layoutDir, tag }, {})
      try {
        const r = await copyImage(src, dest, { platforms: [platform] })
        const img = await this.#load(r.digest)
        const have: Platform = { os: img.config.os, architecture: img.config.architecture, ...(img.config.variant ? { variant: img.config.variant } : {}) }
        if (!platformMatches(platform, have)) {
          this.#emit({ type: 'warning', message: `FROM ${name}: the image is for ${formatPlatform(have)}, not ${formatPlatform(platform)}` })
        }
        return { image: img, copied: r.blobs.copied }
      } finally {
        await dest.close()
      }
    } catch (e) {
      if (isLadingError(e)) throw new LadingError(e.code, `FROM ${name}: ${e.message}`, { cause: e })
      throw e
    } finally {
      await src.close()
    }
  }

  // ---- variables ----------------------------------------------------------------------------

  /** Variables for expansion in a stage: ENV wins over ARG (the Dockerfile reference §Using ARG variables). */
  #lookup(s: StageState): Lookup {
    const env = envMap(s.image.config.config?.Env)
    return (n) => env.get(n) ?? (s.args.has(n) ? s.args.get(n) : undefined)
  }

  #expand(s: StageState, ins: Instruction, word: string, used?: Set<string>): string {
    return expandAt(this.#df.file, ins, word, this.#lookup(s), this.#df.escape, used)
  }

  /** Values of the ARGs in scope (declared, with a value), in declaration order. */
  #argsInScope(s: StageState): Array<[string, string]> {
    return [...s.args].filter((e): e is [string, string] => e[1] !== undefined)
  }

  // ---- steps --------------------------------------------------------------------------------

  async #step(s: StageState, ins: Instruction, pos?: { index: number; total: number }): Promise<void> {
    const announce = (cached: boolean): void => {
      if (pos) this.#emit({ type: 'step', stage: s.label, index: pos.index, total: pos.total, text: ins.text, cached })
    }
    // fn says whether the step was a cache hit; undefined for ARG, which has nothing to run or cache.
    const wrap = async (fn: () => Promise<boolean | undefined>): Promise<void> => {
      let cached: boolean | undefined
      try {
        cached = await fn()
      } catch (e) {
        if (isLadingError(e) && !e.message.startsWith(`${this.#df.file}:`)) {
          throw new LadingError(e.code, `${this.#df.file}:${ins.line}:${ins.column}: ${e.message}`, { cause: e })
        }
        throw e
      } finally {
        // The step's cache entry is written (or the step failed): a build waiting for it goes on.
        await this.#releaseStep()
      }
      if (cached === true) this.#stepsCached++
      else if (cached === false) this.#stepsRun++
    }
    this.#announce = announce
    switch (ins.keyword) {
      case 'ARG': return wrap(() => this.#arg(s, ins))
      case 'ENV': return wrap(() => this.#env(s, ins))
      case 'LABEL': return wrap(() => this.#label(s, ins))
      case 'WORKDIR': return wrap(() => this.#workdir(s, ins))
      case 'USER': return wrap(() => this.#simple(s, ins, (c, v) => { c.User = v }, `USER`))
      case 'STOPSIGNAL': return wrap(() => this.#simple(s, ins, (c, v) => { c.StopSignal = v }, 'STOPSIGNAL'))
      case 'MAINTAINER': return wrap(() => {
        const v = this.#expand(s, ins, ins.args)
        return this.#configStep(s, ins, `MAINTAINER ${v}`, (c) => { c.author = v })
      })
      case 'EXPOSE': return wrap(() => this.#expose(s, ins))
      case 'VOLUME': return wrap(() => this.#volume(s, ins))
      case 'CMD': case 'ENTRYPOINT': return wrap(() => this.#command(s, ins))
      case 'SHELL': return wrap(() => this.#configStep(s, ins, `SHELL [${ins.exec!.join(' ')}]`, (c) => { c.config!.Shell = [...ins.exec!] }))
      case 'HEALTHCHECK': return wrap(() => this.#healthcheck(s, ins))
      case 'ONBUILD': return wrap(() => this.#configStep(s, ins, `ONBUILD ${ins.args}`, (c) => {
        c.config!.OnBuild = [...(Array.isArray(c.config!.OnBuild) ? c.config!.OnBuild as string[] : []), ins.args]
      }))
      case 'RUN': return wrap(() => this.#run(s, ins))
      case 'COPY': case 'ADD': return wrap(() => this.#copy(s, ins))
      default: throw this.#err(ins, `${ins.keyword} is not valid here`)
    }
  }

  #announce: (cached: boolean) => void = () => {}

  #keyFor(s: StageState, parts: unknown[]): string {
    return digestOf(JSON.stringify([s.key, ...parts])).slice(7)
  }

  /**
   * The cached image for a key, unless --no-cache. On a miss the step's lock in the cache
   * (CACHE/locks/<key>, src/io/lock.ts) is taken and held until the step ends (#releaseStep, from
   * #step): two builds sharing a cache that reach the same step at once run it once, and the second
   * takes the first's result (BuildKit's solver does the same within its daemon). Without it both
   * would run it and make different layers (file times differ), and their images would disagree.
   * Steps run one at a time and take no other step lock while holding one, so no two builds wait on
   * each other; a holder that dies is seen by its dead pid (or a lock not refreshed) and replaced.
   */
  async #cached(key: string): Promise<CurrentImage | undefined> {
    if (this.#o.noCache) return undefined
    const hit = await this.#cacheEntry(key)
    if (hit) return hit
    await this.#holdStep(key)
    // Another build may have finished this step while this one waited for its lock.
    const after = await this.#cacheEntry(key)
    if (after) await this.#releaseStep()
    return after
  }

  async #cacheEntry(key: string): Promise<CurrentImage | undefined> {
    const entries = await this.#layout.tagEntries(`cache-${key}`)
    if (entries.length !== 1) return undefined
    try { return await this.#load(entries[0]!.digest) } catch { return undefined }
  }

  /** The lock of the step running now: released (and its release awaited) when the step ends. */
  #held: { release: () => void; done: Promise<unknown> } | undefined

  async #holdStep(key: string): Promise<void> {
    const dir = path.join(this.#cacheDir, 'locks')
    fs.mkdirSync(dir, { recursive: true })
    let release!: () => void
    const stepEnded = new Promise<void>((resolve) => { release = resolve })
    let acquired!: () => void
    const got = new Promise<void>((resolve) => { acquired = resolve })
    // A step may run for hours (a long RUN); a live holder keeps its lock fresh, so waiting has no
    // practical limit, as a second `docker build` waits for the first's step.
    const done = withLock(path.join(dir, key), async () => { acquired(); await stepEnded }, { timeoutMs: 24 * 3600_000 })
    await Promise.race([got, done])
    this.#held = { release, done }
  }

  async #releaseStep(): Promise<void> {
    const held = this.#held
    this.#held = undefined
    if (!held) return
    held.release()
    await held.done
  }

  /**
   * A step that changes only the config: cached by (parent key, created_by, extra); on a miss the
   * edit is applied and recorded with an empty_layer history entry.
   */
  async #configStep(s: StageState, _ins: Instruction, createdBy: string, edit: (c: ImageConfig & { config: NonNullable<ImageConfig['config']> }) => void, extra?: unknown): Promise<boolean> {
    const key = this.#keyFor(s, ['config', createdBy, extra ?? null, this.#o.timestamp?.getTime() ?? null])
    const hit = await this.#cached(key)
    if (hit) {
      s.image = hit
      s.key = key
      this.#announce(true)
      return true
    }
    this.#announce(false)
    const cfg = structuredClone(s.image.config) as ImageConfig & { config: NonNullable<ImageConfig['config']> }
    cfg.config = { ...(cfg.config ?? {}) }
    edit(cfg)
    const created = this.#created()
    cfg.created = created
    cfg.history = [...(cfg.history ?? []), { created, created_by: createdBy, comment: 'buildkit.dockerfile.v0', empty_layer: true }]
    const desc = await writeImage(this.#layout, { config: cfg, manifest: s.image.manifest, tag: `cache-${key}` })
    this.#markParent(s.key)
    s.image = { manifest: s.image.manifest, config: cfg, desc }
    s.key = key
    return false
  }

  async #simple(s: StageState, ins: Instruction, set: (c: NonNullable<ImageConfig['config']>, v: string) => void, kw: string): Promise<boolean> {
    const v = this.#expand(s, ins, ins.args)
    return this.#configStep(s, ins, `${kw} ${v}`, (c) => set(c.config, v))
  }

  async #arg(s: StageState, ins: Instruction): Promise<undefined> {
    const decl = argDeclarations(ins, this.#df.file, this.#df.escape, this.#lookup(s))
    const shown: string[] = []
    for (const d of decl) {
      // A stage's `ARG NAME` takes the build arg, else its default, else the global value.
      const v = this.#buildArgs.get(d.name) ?? d.value ?? this.#globals.get(d.name)
      s.args.set(d.name, v)
      shown.push(v === undefined ? d.name : `${d.name}=${v}`)
    }
    // ARG changes no config; BuildKit records no history entry for it. Its value is in later keys.
    s.key = this.#keyFor(s, ['arg', shown])
    this.#announce(false)
    return undefined
  }

  /** `NAME=VALUE ...` or the legacy `NAME VALUE` form (ENV, LABEL). */
  #pairs(s: StageState, ins: Instruction): Array<[string, string]> {
    const words = splitWords(ins.args, this.#df.escape)
    if (words.length > 0 && !words[0]!.text.includes('=')) {
      if (words.length < 2) throw this.#err(ins, `${ins.keyword} ${ins.args}: missing value (${ins.keyword} NAME=VALUE)`)
      const rest = ins.args.slice(words[1]!.offset)
      return [[this.#expand(s, ins, words[0]!.text), this.#expand(s, ins, rest)]]
    }
    return words.map((w) => {
      const eq = w.text.indexOf('=')
      if (eq <= 0) throw this.#err(ins, `${ins.keyword}: ${JSON.stringify(w.text)} is not NAME=VALUE`)
      return [this.#expand(s, ins, w.text.slice(0, eq)), this.#expand(s, ins, w.text.slice(eq + 1))]
    })
  }

  async #env(s: StageState, ins: Instruction): Promise<boolean> {
    const pairs = this.#pairs(s, ins)
    for (const [k] of pairs) if (k === '' || k.includes('=')) throw this.#err(ins, `ENV: invalid name ${JSON.stringify(k)}`)
    return this.#configStep(s, ins, `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`, (c) => {
      const env = [...(c.config.Env ?? [])]
      for (const [k, v] of pairs) {
        const at = env.findIndex((e) => e === k || e.startsWith(`${k}=`))
        if (at >= 0) env[at] = `${k}=${v}`
        else env.push(`${k}=${v}`)
      }
      c.config.Env = env
    })
  }

  async #label(s: StageState, ins: Instruction): Promise<boolean> {
    const pairs = this.#pairs(s, ins)
    return this.#configStep(s, ins, `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`, (c) => {
      c.config.Labels = { ...(c.config.Labels ?? {}), ...Object.fromEntries(pairs) }
    })
  }

  #workdirOf(s: StageState): string {
    const w = s.image.config.config?.WorkingDir
    return typeof w === 'string' && w !== '' ? w : '/'
  }

  async #workdir(s: StageState, ins: Instruction): Promise<boolean> {
    const v = this.#expand(s, ins, ins.args)
    const dir = path.posix.resolve(this.#workdirOf(s), v)
    // WORKDIR creates the directory (owned by root, 0755) when missing; that is a layer.
    const key = this.#keyFor(s, ['workdir', dir, this.#o.timestamp?.getTime() ?? null])
    const hit = await this.#cached(key)
    if (hit) { s.image = hit; s.key = key; this.#announce(true); return true }
    this.#announce(false)
    const tree = await this.#materialize(s)
    const edit = (c: ImageConfig): void => { c.config = { ...(c.config ?? {}), WorkingDir: dir } }
    if (!isDirectoryIn(tree.rootfs, dir)) {
      // Made as the stage's USER would (BuildKit and buildah chown what WORKDIR creates to it).
      const user = s.image.config.config?.User
      const owner = user ? (await resolveUser(user, rootFileReader(tree.rootfs)).catch((e: Error) => { throw this.#err(ins, `WORKDIR: USER ${user}: ${e.message}`) })).user : { uid: 0, gid: 0 }
      const { rel } = canonicalPath(tree.rootfs, dir)
      const parts = rel.split('/')
      for (let i = 1; i <= parts.length; i++) {
        const host = path.join(tree.rootfs, ...parts.slice(0, i))
        if (fs.existsSync(host)) continue
        fs.mkdirSync(host, 0o755)
        // Rootless, the user's own files are root's in the image; other owners cannot be made.
        if (!this.#rootless) fs.chownSync(host, owner.uid, owner.gid)
      }
    }
    await this.#commitLayer(s, tree, key, `WORKDIR ${dir}`, edit, [])
    return false
  }

  async #expose(s: StageState, ins: Instruction): Promise<boolean> {
    const ports: string[] = []
    for (const w of splitWords(ins.args, this.#df.escape)) {
      const v = this.#expand(s, ins, w.text)
      const m = /^(\d+)-(\d+)(\/\w+)?$/.exec(v)
      try {
        if (m) {
          const a = Number(m[1]); const z = Number(m[2])
          if (z < a || z - a > 65535) throw new Error('bad range')
          for (let p = a; p <= z; p++) ports.push(normalizePort(`${p}${m[3] ?? ''}`))
        } else ports.push(normalizePort(v.toLowerCase()))
      } catch {
        throw this.#err(ins, `EXPOSE: invalid port ${JSON.stringify(v)} (PORT[/tcp|udp|sctp] or a range)`)
      }
    }
    return this.#configStep(s, ins, `EXPOSE map[${ports.map((p) => `${p}:{}`).join(' ')}]`, (c) => {
      c.config.ExposedPorts = { ...(c.config.ExposedPorts ?? {}) }
      for (const p of ports) c.config.ExposedPorts[p] = {}
    })
  }

  async #volume(s: StageState, ins: Instruction): Promise<boolean> {
    const raw = ins.exec ?? splitWords(ins.args, this.#df.escape).map((w) => w.text)
    const vols = raw.map((v) => this.#expand(s, ins, ins.exec ? JSON.stringify(v) : v))
    for (const v of vols) if (v === '') throw this.#err(ins, 'VOLUME: empty path')
    return this.#configStep(s, ins, `VOLUME [${vols.join(' ')}]`, (c) => {
      c.config.Volumes = { ...(c.config.Volumes ?? {}) }
      for (const v of vols) c.config.Volumes[v] = {}
    })
  }

  #shellOf(s: StageState): string[] {
    const sh = s.image.config.config?.Shell
    return Array.isArray(sh) && sh.length > 0 ? sh as string[] : DEFAULT_SHELL
  }

  async #command(s: StageState, ins: Instruction): Promise<boolean> {
    const argv = ins.exec ?? [...this.#shellOf(s), ins.args]
    const created = `${ins.keyword} ${goQuote(argv)}`
    if (ins.keyword === 'CMD') s.cmdSet = true
    const cmdSet = s.cmdSet
    return this.#configStep(s, ins, created, (c) => {
      if (ins.keyword === 'CMD') c.config.Cmd = argv
      else {
        c.config.Entrypoint = argv
        // An ENTRYPOINT resets a CMD inherited from the base image (the Dockerfile reference §ENTRYPOINT).
        if (!cmdSet) delete c.config.Cmd
      }
    }, cmdSet)
  }

  async #healthcheck(s: StageState, ins: Instruction): Promise<boolean> {
    const words = splitWords(ins.args, this.#df.escape)
    const kind = words[0]?.text.toUpperCase()
    let hc: Record<string, unknown>
    if (kind === 'NONE') {
      if (words.length > 1 || ins.flags.length > 0) throw this.#err(ins, 'HEALTHCHECK NONE takes no arguments')
      hc = { Test: ['NONE'] }
    } else if (kind === 'CMD') {
      const rest = ins.args.slice(words[1]?.offset ?? ins.args.length).trim()
      if (rest === '') throw this.#err(ins, 'HEALTHCHECK CMD needs a command')
      let exec: string[] | undefined
      if (rest.startsWith('[')) { try { const v: unknown = JSON.parse(rest); if (Array.isArray(v) && v.every((x) => typeof x === 'string')) exec = v } catch { /* shell form */ } }
      hc = { Test: exec ? ['CMD', ...exec] : ['CMD-SHELL', rest] }
      for (const f of ins.flags) {
        const v = f.value ?? ''
        if (f.name === 'retries') {
          if (!/^\d+$/.test(v)) throw this.#err(ins, `HEALTHCHECK --retries=${v}: not a number`)
          hc.Retries = Number(v)
        } else {
          const ns = parseDuration(v)
          if (ns === undefined) throw this.#err(ins, `HEALTHCHECK --${f.name}=${v}: not a duration (e.g. 30s, 1m30s)`)
          const field = { interval: 'Interval', timeout: 'Timeout', 'start-period': 'StartPeriod', 'start-interval': 'StartInterval' }[f.name]!
          hc[field] = ns
        }
      }
    } else {
      throw this.#err(ins, 'HEALTHCHECK must be followed by CMD or NONE')
    }
    return this.#configStep(s, ins, `HEALTHCHECK ${JSON.stringify(hc)}`, (c) => { c.config.Healthcheck = hc })
  }

  // ---- root filesystems and layers -------------------------------------------------------------

  /** The stage's rootfs with every layer of its current image applied, and its snapshot. */
  async #materialize(s: StageState): Promise<Tree> {
    if (s.materializing) {
      const p = s.materializing
      delete s.materializing
      await p.catch(() => {})
    }
    const want = s.image.manifest.layers.map((l) => l.digest as string)
    const t = s.tree
    if (t && t.layers.length <= want.length && t.layers.every((d, i) => d === want[i])) {
      if (t.layers.length === want.length) return t
      await this.#apply(s.image, t.rootfs, t.layers.length)
      t.layers = want
      t.snapshot = await this.#snapshot(t.rootfs)
      return t
    }
    if (t) await removeTree(t.dir)
    const dir = path.join(this.#work, `tree-${++this.#seq}`)
    const rootfs = path.join(dir, 'rootfs')
    fs.mkdirSync(rootfs, { recursive: true, mode: 0o755 })
    await this.#apply(s.image, rootfs, 0)
    const tree: Tree = { dir, rootfs, layers: want, snapshot: await this.#snapshot(rootfs) }
    s.tree = tree
    return tree
  }

  /** A snapshot; rootless, unreadable directories are opened for the walk (as `lading unpack --rootless`). */
  async #snapshot(rootfs: string): Promise<Snapshot> {
    const opened = await openUpDirs(rootfs)
    try {
      return withOriginalModes(await takeSnapshot(rootfs), opened)
    } finally {
      await restoreDirs(opened)
    }
  }

  async #apply(image: CurrentImage, rootfs: string, from: number): Promise<void> {
    const resolved: ResolvedImage = await resolveImage(this.#layout, { digest: image.desc.digest }, 'any')
    const partial: ResolvedImage = { ...resolved, manifest: { ...resolved.manifest, layers: resolved.manifest.layers.slice(from) } }
    await applyImageLayers(partial, rootfs, { rootless: this.#rootless, ...(this.#o.signal ? { signal: this.#o.signal } : {}) })
  }

  /**
   * The rootfs changed: its diff becomes one layer (none when nothing changed: then the history
   * entry is empty_layer), the config is edited, and the result is cached under `key`.
   */
  async #commitLayer(s: StageState, tree: Tree, key: string, createdBy: string, edit: ((c: ImageConfig) => void) | undefined, mask: string[], scope?: string[]): Promise<void> {
    const created = this.#created()
    const diffOpts: Parameters<typeof diffLayer>[2] = {}
    if (mask.length) diffOpts.maskPaths = mask
    if (scope) diffOpts.scope = scope
    if (this.#o.timestamp) diffOpts.mtimeClamp = this.#o.timestamp
    const opened = await openUpDirs(tree.rootfs)
    let added: Awaited<ReturnType<typeof appendLayer>>
    let now: Snapshot
    const history: History = { created, created_by: createdBy, comment: 'buildkit.dockerfile.v0' }
    const base = { manifest: s.image.manifest, config: structuredClone(s.image.config) }
    if (edit) edit(base.config)
    try {
      const diff = diffLayer(tree.rootfs, withOpenedModes(tree.snapshot, opened), diffOpts)
      let layerTar: Readable = diff.stream
      if (this.#rootless) {
        // Files the build made are the user's on disk and root's in the image (as repack does).
        const remap = new IdRemapStream(inverseMapper(undefined, process.getuid?.()), inverseMapper(undefined, process.getgid?.()))
        pipeline(diff.stream, remap).catch(() => {})
        layerTar = remap
      }
      added = await appendLayer(this.#layout, base, layerTar, { compression: 'gzip', history, tag: `cache-${key}` })
      now = withOriginalModes(await diff.snapshot, opened)
    } finally {
      await restoreDirs(opened)
    }
    if (added.manifest) {
      this.#layers++
      s.image = await this.#load(added.manifest.digest)
      tree.layers = s.image.manifest.layers.map((l) => l.digest as string)
    } else {
      const cfg = base.config
      cfg.created = created
      cfg.history = [...(cfg.history ?? []), { ...history, empty_layer: true }]
      const desc = await writeImage(this.#layout, { config: cfg, manifest: s.image.manifest, tag: `cache-${key}` })
      s.image = { manifest: s.image.manifest, config: cfg, desc }
    }
    tree.snapshot = now
    this.#markParent(s.key)
    s.key = key
  }

  // ---- RUN ----------------------------------------------------------------------------------

  async #run(s: StageState, ins: Instruction): Promise<boolean> {
    const shell = this.#shellOf(s)
    let argv: string[]
    let shown: string
    if (ins.exec) {
      argv = ins.exec
      shown = ins.exec.join(' ')
    } else if (ins.heredocs.length > 0) {
      const only = splitWords(ins.args, this.#df.escape).length === 1
      // `RUN <<EOF` alone runs the body as the script; otherwise the shell reads the heredocs itself.
      const script = only ? ins.heredocs[0]!.body : `${ins.args}\n${ins.heredocs.map((h) => `${h.body}${h.name}\n`).join('')}`
      argv = [...shell, script]
      shown = `${shell.join(' ')} ${script}`
    } else {
      argv = [...shell, ins.args]
      shown = `${shell.join(' ')} ${ins.args}`
    }
    const args = this.#argsInScope(s)
    const createdBy = `RUN ${args.length ? `|${args.length} ${args.map(([k, v]) => `${k}=${v}`).join(' ')} ` : ''}${shown} # buildkit`
    const network = this.#flag(ins, 'network') ?? this.#o.network ?? 'none'
    if (network !== 'none' && network !== 'host' && network !== 'default') throw this.#err(ins, `RUN --network=${network}: expected none or host`)
    if (this.#flag(ins, 'security') !== undefined && this.#flag(ins, 'security') !== 'sandbox') throw this.#err(ins, 'RUN --security=insecure is not supported')
    const proxies = PROXY_ARGS.filter((p) => this.#buildArgs.has(p) && !s.args.has(p)).map((p) => [p, this.#buildArgs.get(p)!] as [string, string])
    const mounts = await this.#mounts(s, ins)
    const key = this.#keyFor(s, ['run', argv, args, proxies, network, mounts.key, this.#o.timestamp?.getTime() ?? null])
    const hit = await this.#cached(key)
    if (hit) { s.image = hit; s.key = key; this.#announce(true); return true }
    this.#announce(false)
    if (this.#target.architecture !== hostPlatform().architecture || this.#target.os !== hostPlatform().os) {
      throw this.#err(ins, `RUN for ${formatPlatform(this.#target)} on a ${formatPlatform(hostPlatform())} host needs emulation, which lading build does not do`)
    }
    const tree = await this.#materialize(s)
    const envList = s.image.config.config?.Env ?? []
    const env = envMap(envList)
    const runEnv = [...envList]
    // Build args are in the environment of RUN unless ENV sets the same name.
    for (const [k, v] of [...args, ...proxies]) if (!env.has(k)) runEnv.push(`${k}=${v}`)
    if (!env.has('PATH')) runEnv.unshift(DEFAULT_PATH)
    const result = await runStep({
      bundle: path.join(tree.dir, 'bundle'),
      rootfs: tree.rootfs,
      args: argv,
      env: runEnv,
      cwd: this.#workdirOf(s),
      user: s.image.config.config?.User || undefined,
      network: network === 'host' ? 'host' : 'none',
      mounts: mounts.mounts,
      rootless: this.#rootless,
      what: `RUN ${ins.args}`.slice(0, 200),
      onOutput: (data) => this.#emit({ type: 'output', data }),
      ...(this.#o.signal ? { signal: this.#o.signal } : {}),
    })
    const mask = [...result.mountPoints, ...mounts.targets]
    await this.#commitLayer(s, tree, key, createdBy, undefined, mask)
    return false
  }

  #flag(ins: Instruction, name: string): string | undefined {
    return ins.flags.find((f) => f.name === name)?.value
  }

  /** RUN --mount: cache, bind, secret, tmpfs (BuildKit's syntax: comma-separated key=value). */
  async #mounts(s: StageState, ins: Instruction): Promise<{ mounts: RuntimeMount[]; targets: string[]; key: unknown[] }> {
    const mounts: RuntimeMount[] = []
    const targets: string[] = []
    const key: unknown[] = []
    for (const f of ins.flags.filter((x) => x.name === 'mount')) {
      const spec = this.#expand(s, ins, f.value ?? '')
      const kv = new Map<string, string>()
      for (const part of spec.split(',')) {
        const eq = part.indexOf('=')
        kv.set(eq < 0 ? part : part.slice(0, eq), eq < 0 ? 'true' : part.slice(eq + 1))
      }
      const type = kv.get('type') ?? 'bind'
      const given = kv.get('target') ?? kv.get('dst') ?? kv.get('destination')
      // A relative target is below the working directory (BuildKit).
      let target = given === undefined ? undefined : path.posix.resolve(this.#workdirOf(s), given)
      if (type === 'secret') {
        const id = kv.get('id') ?? (target ? path.posix.basename(target) : undefined)
        if (!id) throw this.#err(ins, 'RUN --mount=type=secret needs id=')
        target ??= `/run/secrets/${id}`
        const file = this.#o.secrets?.[id]
        if (file === undefined) {
          if (kv.get('required') === 'true') throw this.#err(ins, `secret ${JSON.stringify(id)} is required: give --secret id=${id},src=FILE`)
          continue
        }
        if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) throw this.#err(ins, `secret ${JSON.stringify(id)}: ${file} is not a readable file`)
        // The secret's content is not in the cache key (it must not be derivable from the cache), only its id.
        mounts.push({ destination: target, type: 'bind', source: path.resolve(file), options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] })
        key.push(['secret', id, target])
      } else if (type === 'cache') {
        if (!target) throw this.#err(ins, 'RUN --mount=type=cache needs target=')
        const id = kv.get('id') ?? target
        const dir = path.join(this.#cacheDir, 'mounts', digestOf(id).slice(7, 39))
        fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
        mounts.push({ destination: target, type: 'bind', source: dir, options: ['rbind', 'rw'] })
        key.push(['cache', id, target])
      } else if (type === 'tmpfs') {
        if (!target) throw this.#err(ins, 'RUN --mount=type=tmpfs needs target=')
        mounts.push({ destination: target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev'] })
        key.push(['tmpfs', target])
      } else if (type === 'bind') {
        if (!target) throw this.#err(ins, 'RUN --mount=type=bind needs target=')
        const from = kv.get('from')
        const source = kv.get('source') ?? kv.get('src') ?? '/'
        const root = await this.#sourceRoot(s, ins, from)
        const { sources } = resolveSources(root, [source])
        const src = sources[0]!
        const rw = kv.get('rw') === 'true' || kv.get('readwrite') === 'true'
        let host = src.host
        if (rw) {
          // Writes to a rw bind mount are thrown away (BuildKit): mount a copy.
          host = path.join(this.#work, `bind-${++this.#seq}`)
          fs.cpSync(src.host, host, { recursive: true, verbatimSymlinks: true })
        }
        mounts.push({ destination: target, type: 'bind', source: host, options: ['rbind', rw ? 'rw' : 'ro'] })
        key.push(['bind', from ?? '', source, target, rw, await contentDigest([{ dest: target, items: itemsOf(root, src) }])])
      } else {
        throw this.#err(ins, `RUN --mount=type=${type} is not supported (cache, bind, secret, tmpfs are)`)
      }
      targets.push(target.replace(/^\/+/, ''))
    }
    return { mounts, targets, key }
  }

  /** The root COPY --from / a bind mount reads from: the context, a stage's rootfs, or an image's. */
  async #sourceRoot(s: StageState, ins: Instruction, from: string | undefined): Promise<SourceRoot> {
    if (from === undefined || from === 'context') {
      return { dir: this.#context, what: 'the build context', ...(this.#ignore ? { ignore: this.#ignore } : {}) }
    }
    const stage = findStage(this.#plan, from)
    if (stage) {
      const st = this.#done.get(stage)
      if (!st) throw this.#err(ins, `stage ${JSON.stringify(from)} is not built before this step`)
      const tree = await this.#materialize(st)
      return { dir: fs.realpathSync(tree.rootfs), what: `stage ${from}` }
    }
    // An image: pulled into the cache and unpacked like a stage.
    const img = (await this.#pull(ins, from, this.#target)).image
    const tmp: StageState = { stage: s.stage, label: from, image: img, key: img.desc.digest, args: new Map(), cmdSet: false }
    const tree = await this.#materialize(tmp)
    return { dir: fs.realpathSync(tree.rootfs), what: `image ${from}` }
  }

  // ---- COPY / ADD -----------------------------------------------------------------------------

  async #copy(s: StageState, ins: Instruction): Promise<boolean> {
    const isAdd = ins.keyword === 'ADD'
    for (const f of ins.flags) {
      if (f.name === 'parents' || f.name === 'exclude' || f.name === 'keep-git-dir') throw this.#err(ins, `${ins.keyword} --${f.name} is not supported`)
    }
    const raw = ins.exec ?? splitWords(ins.args, this.#df.escape).map((w) => w.text)
    const words = raw.map((w) => (ins.exec ? this.#expand(s, ins, JSON.stringify(w)) : (/^<<-?/.test(w) ? w : this.#expand(s, ins, w))))
    const destWord = words.pop()!
    const dest = path.posix.resolve(this.#workdirOf(s), destWord) + (destWord.endsWith('/') || destWord === '.' ? '/' : '')
    const heredocWords = words.filter((w) => /^<<-?/.test(w))
    const srcWords = words.filter((w) => !/^<<-?/.test(w))
    const from = this.#flag(ins, 'from') !== undefined ? this.#expand(s, ins, this.#flag(ins, 'from')!) : undefined
    if (from !== undefined && isAdd) throw this.#err(ins, 'ADD does not take --from (use COPY)')
    const checksum = this.#flag(ins, 'checksum')
    const urls = isAdd ? srcWords.filter((w) => /^https?:\/\//i.test(w)) : []
    if (checksum !== undefined && urls.length === 0) throw this.#err(ins, 'ADD --checksum is only for URL sources')
    const local = srcWords.filter((w) => !urls.includes(w))
    const root = await this.#sourceRoot(s, ins, from)
    const { sources, wildcard } = resolveSources(root, local)
    const multi = sources.length + urls.length + heredocWords.length > 1 || wildcard
    if (multi && !dest.endsWith('/')) throw this.#err(ins, `${ins.keyword} with more than one source needs a destination directory ending in / (got ${destWord})`)

    // Content digests for the key; URL sources are fetched first (their content is their key).
    const fetched: Array<{ url: string; file: string; digest: string; mtime?: Date }> = []
    for (const u of urls) fetched.push(await this.#fetch(ins, u, checksum))
    const groups = sources.map((src) => ({ dest: src.rel, items: itemsOf(root, src) }))
    const heredocs = heredocWords.map((w) => {
      const name = w.replace(/^<<-?["']?/, '').replace(/["']$/, '')
      const h = ins.heredocs.find((x) => x.name === name)
      if (!h) throw this.#err(ins, `here-document ${w} has no body`)
      return { name, body: h.expand ? expandHeredoc(h.body, this.#lookup(s), this.#df.escape) : h.body }
    })
    const chown = this.#flag(ins, 'chown') !== undefined ? this.#expand(s, ins, this.#flag(ins, 'chown')!) : undefined
    const chmod = this.#flag(ins, 'chmod') !== undefined ? this.#expand(s, ins, this.#flag(ins, 'chmod')!) : undefined
    if (chmod !== undefined && !/^[0-7]{3,4}$/.test(chmod)) throw this.#err(ins, `--chmod=${chmod}: expected an octal mode such as 755`)
    const key = this.#keyFor(s, [ins.keyword, from ?? null, raw, dest, chown ?? null, chmod ?? null, await contentDigest(groups), fetched.map((f) => f.digest), heredocs, this.#o.timestamp?.getTime() ?? null])
    const createdBy = `${ins.keyword} ${ins.text.slice(ins.text.search(/\s/) + 1).trim()} # buildkit`
    const hit = await this.#cached(key)
    if (hit) { s.image = hit; s.key = key; this.#announce(true); return true }
    this.#announce(false)

    const tree = await this.#materialize(s)
    const owner = chown !== undefined ? await resolveChown(tree.rootfs, chown).catch((e: Error) => { throw this.#err(ins, `--chown=${chown}: ${e.message}`) }) : undefined
    const attrs: CopyAttrs = { rootOwned: from === undefined, ...(owner ? { uid: owner.uid, gid: owner.gid } : {}), ...(chmod !== undefined ? { mode: parseInt(chmod, 8) } : {}) }
    const destIsDir = dest.endsWith('/') || isDirectoryIn(tree.rootfs, dest)
    const destCanon = canonicalPath(tree.rootfs, dest).rel
    const placements: Placement[] = []
    const data: DataFile[] = []
    const mtimeNs = BigInt((this.#o.timestamp ?? new Date()).getTime()) * 1_000_000n
    // Where this step writes, for the diff (DiffOptions.scope): the placements and data files below
    // (canonical paths: every entry lands inside its target, layer/apply never follows a final
    // component, and a copied directory's subdirectories are entries of their own). An extracted
    // archive can put its entries anywhere (through symlinks it makes): then the whole tree.
    let extracted = false
    for (const [i, src] of sources.entries()) {
      // The walk made for the cache key is the list of what to copy (one walk of the sources).
      const items = groups[i]!.items
      if (isAdd && src.entry.type === 'file') {
        const tar = await openArchive(src.host)
        if (tar) {
          extracted = true
          await extractInto(tree.rootfs, destCanon, tar, this.#rootless)
          continue
        }
      }
      if (src.entry.type === 'directory') {
        // The contents go into dest; dest itself is made from the source directory only when missing.
        const exists = isDirectoryIn(tree.rootfs, dest)
        placements.push({ target: destCanon, dirRoot: src.host, items: exists ? items.filter((i) => i.rel !== '') : items, attrs })
      } else {
        const target = destIsDir ? joinRel(destCanon, path.posix.basename(src.rel)) : destCanon
        placements.push({ target, items, attrs })
      }
    }
    for (const f of fetched) {
      const name = path.posix.basename(new URL(f.url).pathname) || 'index.html'
      const target = destIsDir ? joinRel(destCanon, name) : destCanon
      const st = fs.statSync(f.file)
      // ADD of a URL: the file gets mode 0600 and the Last-Modified time (the Dockerfile reference §ADD).
      data.push({ target, content: { file: f.file }, size: st.size, mode: 0o600, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtimeNs: f.mtime ? BigInt(f.mtime.getTime()) * 1_000_000n : BigInt(Math.floor(st.mtimeMs)) * 1_000_000n })
    }
    for (const h of heredocs) {
      const target = destIsDir ? joinRel(destCanon, h.name) : destCanon
      data.push({ target, content: { data: Buffer.from(h.body) }, size: Buffer.byteLength(h.body), mode: attrs.mode ?? 0o644, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtimeNs })
    }
    await applyCopy(tree.rootfs, placements, data, this.#rootless)
    const scope = extracted ? undefined : [...placements.map((p) => p.target), ...data.map((d) => d.target)]
    await this.#commitLayer(s, tree, key, createdBy, undefined, [], scope)
    return false
  }

  /** ADD <url>: fetched to a temporary file (at most 8 GiB), checked against --checksum. */
  async #fetch(ins: Instruction, url: string, checksum: string | undefined): Promise<{ url: string; file: string; digest: string; mtime?: Date }> {
    let res: Response
    try {
      res = await fetch(url, { redirect: 'follow', ...(this.#o.signal ? { signal: this.#o.signal } : {}) })
    } catch (e) {
      throw this.#err(ins, `ADD ${url}: ${(e as Error).message}`)
    }
    if (!res.ok || !res.body) throw this.#err(ins, `ADD ${url}: HTTP ${res.status}`)
    const file = path.join(this.#work, `download-${++this.#seq}`)
    const out = fs.createWriteStream(file, { mode: 0o600 })
    let size = 0
    const limit = 8 * 1024 ** 3
    const { Readable } = await import('node:stream')
    const { pipeline } = await import('node:stream/promises')
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>)
    body.on('data', (b: Buffer) => { size += b.length; if (size > limit) body.destroy(new LadingError('SIZE_LIMIT', `ADD ${url}: larger than 8 GiB`)) })
    await pipeline(body, out)
    const digest = await fileDigest(file, size)
    if (checksum !== undefined) {
      const want = checksum.trim()
      if (want !== digest) throw new LadingError('DIGEST_MISMATCH', `${this.#df.file}:${ins.line}:${ins.column}: ADD ${url}: --checksum=${want} but the content is ${digest}`)
    }
    const lm = res.headers.get('last-modified')
    const mtime = lm ? new Date(lm) : undefined
    return mtime && !Number.isNaN(mtime.getTime()) ? { url, file, digest, mtime } : { url, file, digest }
  }
}

/**
 * Work trees of builds that were killed (SIGKILL, a crash) are removed by the next build: their
 * names start with the pid, and a pid that no longer runs has no build to finish.
 */
async function removeStaleWork(workRoot: string): Promise<void> {
  let names: string[]
  try { names = fs.readdirSync(workRoot) } catch { return }
  for (const n of names) {
    const m = /^(\d+)-/.exec(n)
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) await removeTree(path.join(workRoot, n)).catch(() => {})
  }
}

function joinRel(a: string, b: string): string {
  return a === '' ? b : `${a}/${b}`
}

function envMap(env: unknown): Map<string, string> {
  const m = new Map<string, string>()
  if (!Array.isArray(env)) return m
  for (const e of env) {
    if (typeof e !== 'string') continue
    const i = e.indexOf('=')
    if (i < 0) m.set(e, '')
    else m.set(e.slice(0, i), e.slice(i + 1))
  }
  return m
}

/** Go's %q of a []string, as BuildKit writes CMD and ENTRYPOINT into history: ["a" "b"]. */
function goQuote(argv: string[]): string {
  return `[${argv.map((a) => JSON.stringify(a)).join(' ')}]`
}

/** Go duration strings (30s, 1m30s, 500ms) in nanoseconds. */
function parseDuration(s: string): number | undefined {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined
  let total = 0
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * units[m[2]!]!
  return Math.round(total)
}

/**
 * --chown=USER[:GROUP] (names looked up in the rootfs's /etc/passwd and /etc/group). Without a
 * group the gid is the uid (the Dockerfile reference §COPY --chown).
 */
async function resolveChown(rootfs: string, spec: string): Promise<{ uid: number; gid: number }> {
  const read = rootFileReader(rootfs)
  const [u, g] = spec.split(':', 2) as [string, string | undefined]
  const num = (x: string): number | undefined => (/^\d+$/.test(x) ? Number(x) : undefined)
  let uid = num(u)
  if (uid === undefined) {
    const e = parsePasswd((await read('/etc/passwd')) ?? '').find((p) => p.name === u)
    if (!e) throw new Error(`user ${JSON.stringify(u)} not found in the image's /etc/passwd`)
    uid = e.uid
  }
  if (g === undefined || g === '') return { uid, gid: uid }
  let gid = num(g)
  if (gid === undefined) {
    const e = parseGroup((await read('/etc/group')) ?? '').find((x) => x.name === g)
    if (!e) throw new Error(`group ${JSON.stringify(g)} not found in the image's /etc/group`)
    gid = e.gid
  }
  return { uid, gid }
}

function readIgnore(context: string): IgnoreRules | undefined {
  let text: string
  try { text = fs.readFileSync(path.join(context, '.dockerignore'), 'utf8') } catch { return undefined }
  return new IgnoreRules(text.split(/\r?\n/))
}

/** Write the built image to each destination with the copy engine. */
export async function exportImage(result: BuildResult, dests: ImageReference[], transport: TransportOptions = {}): Promise<Array<{ ref: string; digest: Digest }>> {
  const out: Array<{ ref: string; digest: Digest }> = []
  for (const d of dests) {
    if (d.transport === 'oci') {
      const cache = await Layout.open(result.layout)
      const img = await resolveImage(cache, { digest: result.manifest.digest }, 'any')
      await linkBlobs(cache, await Layout.init(d.dir), [img.manifest.config, ...img.manifest.layers])
    }
    const src = await openSource({ transport: 'oci', dir: result.layout, digest: result.manifest.digest }, transport)
    try {
      const dest = await openDestination(d, transport)
      try {
        const r = await copyImage(src, dest, {})
        out.push({ ref: formatReference(d), digest: r.digest })
      } finally {
        await dest.close()
      }
    } finally {
      await src.close()
    }
  }
  return out
}
