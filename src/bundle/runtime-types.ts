/**
 * The part of the runtime-spec v1.3.0 config.json (runtime-spec config.md, config-linux.md)
 * that Lading generates. Only fields we write are typed; a caller may add others.
 */

/** runtime-spec config.md §Mounts */
export interface RuntimeMount {
  destination: string
  type?: string
  source?: string
  options?: string[]
}

/** runtime-spec config.md §POSIX-platform User */
export interface RuntimeUser {
  uid: number
  gid: number
  umask?: number
  additionalGids?: number[]
}

/** runtime-spec config.md §POSIX process §rlimits */
export interface RuntimeRlimit {
  type: string
  hard: number
  soft: number
}

/** runtime-spec config.md §Linux Process §capabilities */
export interface RuntimeCapabilities {
  bounding?: string[]
  effective?: string[]
  inheritable?: string[]
  permitted?: string[]
  ambient?: string[]
}

export interface RuntimeProcess {
  terminal?: boolean
  user: RuntimeUser
  args: string[]
  env?: string[]
  cwd: string
  capabilities?: RuntimeCapabilities
  rlimits?: RuntimeRlimit[]
  noNewPrivileges?: boolean
}

/** runtime-spec config-linux.md §User namespace mappings */
export interface RuntimeIdMapping {
  containerID: number
  hostID: number
  size: number
}

/** runtime-spec config-linux.md */
export interface RuntimeLinux {
  uidMappings?: RuntimeIdMapping[]
  gidMappings?: RuntimeIdMapping[]
  namespaces: Array<{ type: string; path?: string }>
  resources?: { devices?: Array<{ allow: boolean; access?: string; type?: string; major?: number; minor?: number }> }
  maskedPaths?: string[]
  readonlyPaths?: string[]
}

/** runtime-spec config.md (the document as a whole) */
export interface RuntimeSpec {
  ociVersion: string
  process: RuntimeProcess
  root: { path: string; readonly?: boolean }
  hostname?: string
  mounts: RuntimeMount[]
  annotations?: Record<string, string>
  linux: RuntimeLinux
  [extension: string]: unknown
}
