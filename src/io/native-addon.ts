/**
 * The one loader of Lading's optional native addons (native/, built by `npm install` through
 * scripts/build-native.sh): lading_gzip (io/native-gzip.ts), lading_inflate (io/native-gunzip.ts)
 * and lading_mount (io/native-fs.ts).
 * An addon is loaded on first use, not at module load: the start-up snapshot loads modules at
 * build time, the package may have moved since, and the environment switch is read then.
 */

export interface OptionalAddon<T> {
  /** The addon, or undefined where it is not built, is an older build, or is switched off. */
  get(): T | undefined
  /** Why get() gives undefined (for tests and --debug), or undefined when the addon is in use. */
  unavailableReason(): string | undefined
}

/**
 * `native/build/Release/<name>.node`, checked to export `functions`. From build/src/<module>/
 * (and the bundle in build/src/cli/) the repository root is three levels up. `off` names an
 * environment variable and the value that switches the addon off.
 */
export function optionalAddon<T>(name: string, functions: ReadonlyArray<keyof T & string>, off: { env: string; value: string }): OptionalAddon<T> {
  let loaded: T | null | undefined
  let loadError: string | undefined
  const get = (): T | undefined => {
    if (loaded === undefined) {
      loaded = null
      if (process.env[off.env] === off.value) {
        loadError = `${off.env}=${off.value}`
      } else {
        const file = new URL(`../../../native/build/Release/${name}.node`, import.meta.url).pathname
        try {
          // process.dlopen, not require(): the module loader's resolution took 1.2 ms of the
          // 1.3 ms that loading an addon cost (0.14 ms this way), on the path of every run.
          const mod = { exports: {} as Record<string, unknown> }
          process.dlopen(mod, file)
          if (functions.every((f) => typeof mod.exports[f] === 'function')) loaded = mod.exports as T
          else loadError = `${file} is an older build (npm rebuild)`
        } catch (e) {
          loadError = (e as Error).message.split('\n')[0]
        }
      }
    }
    return loaded ?? undefined
  }
  return { get, unavailableReason: () => (get() ? undefined : loadError) }
}
