/**
 * Platforms: image-index.md §platform (architecture, os, variant, os.version, os.features) with
 * the values of Go's GOOS/GOARCH, and the variant table of image-index.md §Platform Variants.
 */
import { LadingError } from '../errors.js'
import type { Platform } from './types.js'

/** node's process.arch -> GOARCH (and the variant implied by the build, where one exists). */
const NODE_ARCH: Record<string, { architecture: string; variant?: string }> = {
  x64: { architecture: 'amd64' },
  arm64: { architecture: 'arm64', variant: 'v8' },
  arm: { architecture: 'arm' },
  ia32: { architecture: '386' },
  // Node reports little-endian POWER as 'ppc64' on Linux.
  ppc64: { architecture: 'ppc64le' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
  loong64: { architecture: 'loong64' },
  mips: { architecture: 'mips' },
  mipsel: { architecture: 'mipsle' },
}

/** node's process.platform -> GOOS */
const NODE_OS: Record<string, string> = {
  linux: 'linux',
  win32: 'windows',
  darwin: 'darwin',
  freebsd: 'freebsd',
  openbsd: 'openbsd',
  sunos: 'solaris',
  aix: 'aix',
  android: 'android',
  netbsd: 'netbsd',
}

/** The platform this process runs on, in OCI terms. */
export function hostPlatform(): Platform {
  const a = NODE_ARCH[process.arch] ?? { architecture: process.arch }
  const p: Platform = { architecture: a.architecture, os: NODE_OS[process.platform] ?? process.platform }
  let variant = a.variant
  if (a.architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version
    if (typeof v === 'string' || typeof v === 'number') variant = `v${v}`
  }
  if (variant !== undefined) p.variant = variant
  return p
}

/** Common non-Go spellings (uname, Debian) of architectures. */
const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
}

const PART_RE = /^[a-z0-9][a-z0-9._-]*$/

/**
 * Parse `os/arch[/variant]` (e.g. "linux/amd64", "linux/arm64/v8"). Aliases such as
 * x86_64 and aarch64 are normalised to GOARCH. Throws USAGE on anything else.
 */
export function parsePlatform(s: string): Platform {
  const parts = typeof s === 'string' ? s.split('/') : []
  const bad = (why: string): LadingError =>
    new LadingError('USAGE', `invalid platform ${JSON.stringify(s)}: ${why} (expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8)`)
  if (parts.length < 2 || parts.length > 3) throw bad('wrong number of parts')
  for (const part of parts) {
    if (!PART_RE.test(part)) throw bad(part === '' ? 'empty part' : `${JSON.stringify(part)} is not a lower-case name`)
  }
  const [os, arch, variant] = parts as [string, string, string | undefined]
  const alias = ARCH_ALIASES[arch]
  const p: Platform = { os, architecture: alias?.architecture ?? arch }
  const v = variant ?? alias?.variant
  if (v !== undefined) p.variant = v
  return p
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`
}

/**
 * The variant a platform means when it names none: arm64 is v8, amd64 is v1 (GOAMD64's
 * default), 32-bit arm is v7 (what images without a variant are built for in practice).
 */
function normalVariant(architecture: string, variant: string | undefined): string | undefined {
  if (variant) return variant
  if (architecture === 'arm64') return 'v8'
  if (architecture === 'amd64') return 'v1'
  if (architecture === 'arm') return 'v7'
  return undefined
}

/**
 * Does an image for `have` satisfy a request for `want`? os and architecture must be equal.
 * A request without a variant accepts any variant; a request with one accepts the same variant
 * after normalisation (arm64 "v8" == no variant). A requested os.version must be equal. An
 * image with no platform (have undefined) matches nothing: it is not platform-specific.
 */
export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false
  const wa = ARCH_ALIASES[want.architecture]?.architecture ?? want.architecture
  const ha = ARCH_ALIASES[have.architecture]?.architecture ?? have.architecture
  if (want.os !== have.os || wa !== ha) return false
  if (want.variant && normalVariant(wa, want.variant) !== normalVariant(ha, have.variant)) return false
  if (want['os.version'] && want['os.version'] !== have['os.version']) return false
  return true
}
