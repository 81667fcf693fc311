/**
 * Image references, spelled as skopeo spells them:
 *
 *   oci:DIR[:TAG]            oci:DIR@DIGEST (also oci:DIR:@DIGEST)
 *   oci-archive:FILE[:TAG]
 *   docker-archive:FILE[:NAME[:TAG]]   docker-archive:FILE:@N  (the Nth image in the archive, sources only)
 *   dir:DIR
 *   docker://[REGISTRY/]REPO[:TAG|@DIGEST]
 *
 * As in containers/image, the path of a file transport ends at its FIRST colon (so a tag may
 * contain '/' or ':' as image-layout.md §ref.name allows, and a docker-archive name may carry a
 * registry port); a path containing ':' therefore cannot be named, exactly as with skopeo.
 *
 * Docker names (docker:// and docker-archive names) follow the one Docker grammar of
 * ./docker-reference.ts. With neither tag nor digest a docker:// tag is `latest`, as skopeo does.
 *
 * This file is the ONLY spelling of references: parse, format (`formatReference(parseReference(s))`
 * is a canonical spelling that parses back to the same value) and the display form messages use.
 * It loads no transport code; ./open.ts is the table of transports that opens them.
 */
import type { Digest } from '../digest/digest.js'
import { LadingError, isLadingError } from '../errors.js'
import { parseLayoutImage, splitPath } from '../store/image-name.js'
import { DEFAULT_TAG, isValidTag, parseDockerName, parseDockerReference, type DockerReferenceParts } from './docker-reference.js'
import type {
  DirReference,
  DockerArchiveReference,
  DockerReference,
  ImageReference,
  OciArchiveReference,
  OciReference,
  ReferenceSyntax,
  TransportName,
} from './types.js'

function invalid(why: string): LadingError {
  return new LadingError('INVALID_REFERENCE', why)
}

/** The body of `oci:` and `oci-archive:`: the one layout-image rule (src/store/image-name.ts), shared with --image. */
function parseOciLike(body: string, allowDigest: boolean): { path: string; tag?: string; digest?: Digest } {
  return parseLayoutImage(body, allowDigest, invalid)
}

/** A path that cannot be spelled (its first colon would end it) is refused rather than mis-spelled. */
function spellablePath(transport: string, p: string): string {
  if (p.includes(':'))
    throw new LadingError('USAGE', `cannot write a ${transport}: reference for ${JSON.stringify(p)}: the path contains ':', which ends the path in this syntax`)
  return p
}

const oci: ReferenceSyntax<'oci'> = {
  name: 'oci',
  form: 'oci:DIR[:TAG|@DIGEST]',
  parse(body): OciReference {
    const r = parseOciLike(body, true)
    return { transport: 'oci', dir: r.path, ...(r.tag !== undefined ? { tag: r.tag } : {}), ...(r.digest !== undefined ? { digest: r.digest } : {}) }
  },
  format: (r) => `oci:${spellablePath('oci', r.dir)}${r.digest !== undefined ? `@${r.digest}` : r.tag !== undefined ? `:${r.tag}` : ''}`,
  display: (r) => `oci:${r.dir}`,
}

const ociArchive: ReferenceSyntax<'oci-archive'> = {
  name: 'oci-archive',
  form: 'oci-archive:FILE[:TAG]',
  parse(body): OciArchiveReference {
    const r = parseOciLike(body, false)
    return { transport: 'oci-archive', file: r.path, ...(r.tag !== undefined ? { tag: r.tag } : {}) }
  },
  format: (r) => `oci-archive:${spellablePath('oci-archive', r.file)}${r.tag !== undefined ? `:${r.tag}` : ''}`,
  display: (r) => `oci-archive:${r.file}`,
}

const dockerArchive: ReferenceSyntax<'docker-archive'> = {
  name: 'docker-archive',
  form: 'docker-archive:FILE[:NAME[:TAG]|:@N]',
  parse(body): DockerArchiveReference {
    const [file, rest] = splitPath(body)
    if (file === '') throw invalid('empty path')
    if (rest === undefined) return { transport: 'docker-archive', file }
    if (rest.startsWith('@')) {
      if (!/^@\d{1,6}$/.test(rest)) throw invalid(`invalid image index ${JSON.stringify(rest)}`)
      return { transport: 'docker-archive', file, sourceIndex: Number(rest.slice(1)) }
    }
    const { tag, digest } = parseDockerReference(rest)
    if (digest !== undefined) throw invalid('a docker-archive name cannot carry a digest')
    // The name is kept as written (skopeo writes the normalised form into RepoTags: dockerRepoTag).
    const at = rest.lastIndexOf(':')
    const name = tag !== undefined ? rest.slice(0, at) : rest
    return { transport: 'docker-archive', file, name, tag: tag ?? DEFAULT_TAG }
  },
  format(r) {
    const file = spellablePath('docker-archive', r.file)
    if (r.sourceIndex !== undefined) return `docker-archive:${file}:@${r.sourceIndex}`
    return `docker-archive:${file}${r.name !== undefined ? `:${r.name}:${r.tag ?? DEFAULT_TAG}` : ''}`
  },
  display: (r) => `docker-archive:${r.file}`,
}

const dir: ReferenceSyntax<'dir'> = {
  name: 'dir',
  form: 'dir:DIR',
  parse(body): DirReference {
    if (body === '') throw invalid('empty path')
    return { transport: 'dir', dir: body }
  },
  format: (r) => `dir:${r.dir}`,
  display: (r) => `dir:${r.dir}`,
}

function dockerReference(p: DockerReferenceParts, defaultTag: boolean): DockerReference {
  return {
    transport: 'docker',
    registry: p.registry,
    repository: p.repository,
    ...(p.tag !== undefined ? { tag: p.tag } : defaultTag && p.digest === undefined ? { tag: DEFAULT_TAG } : {}),
    ...(p.digest !== undefined ? { digest: p.digest } : {}),
  }
}

const docker: ReferenceSyntax<'docker'> = {
  name: 'docker',
  form: 'docker://[REGISTRY/]REPO[:TAG|@DIGEST]',
  parse(body): DockerReference {
    if (!body.startsWith('//')) throw invalid("expected '//' after 'docker:'")
    return dockerReference(parseDockerReference(body.slice(2)), true)
  },
  format: (r) => `docker://${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`,
  display: (r) => `docker://${r.registry}/${r.repository}`,
}

/** The reference syntax of every transport, by name (./open.ts adds how to open each). */
export const REFERENCE_SYNTAX: { readonly [N in TransportName]: ReferenceSyntax<N> } = {
  oci,
  'oci-archive': ociArchive,
  'docker-archive': dockerArchive,
  dir,
  docker,
}

const FORMS = Object.values(REFERENCE_SYNTAX).map((t) => t.form)

function syntaxOf(name: string): ReferenceSyntax | undefined {
  return Object.hasOwn(REFERENCE_SYNTAX, name) ? (REFERENCE_SYNTAX[name as TransportName] as ReferenceSyntax) : undefined
}

/** INVALID_REFERENCE from a syntax -> the usage error the user sees, naming the expected form. */
function asUsage<T>(input: string, form: string, fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    if (!isLadingError(e, 'INVALID_REFERENCE')) throw e
    throw new LadingError('USAGE', `invalid image reference ${JSON.stringify(input)}: ${(e as Error).message} (expected ${form})`, { cause: e })
  }
}

export function parseReference(s: string): ImageReference {
  if (typeof s !== 'string' || s === '') throw new LadingError('USAGE', `empty image reference (expected one of ${FORMS.join(', ')})`)
  const colon = s.indexOf(':')
  const name = colon < 0 ? '' : s.slice(0, colon)
  const syntax = syntaxOf(name)
  // `docker:` without `//` is not skopeo's spelling either; it is reported as an unknown transport.
  if (!syntax || (name === 'docker' && !s.startsWith('docker://'))) {
    throw new LadingError(
      'USAGE',
      `invalid image reference ${JSON.stringify(s)}: unknown transport ${JSON.stringify(name || s)} (expected one of ${FORMS.join(', ')})`,
    )
  }
  return asUsage(s, syntax.form, () => syntax.parse(s.slice(colon + 1)))
}

/**
 * A reference for the registry commands (list-tags, delete): `docker://[REGISTRY/]REPO[:TAG|@DIGEST]`,
 * or the same without `docker://`. No tag is defaulted (list-tags refuses one; delete
 * defaults it). Another transport's reference is a usage error, not a Docker Hub name.
 */
export function parseRegistryReference(s: string): DockerReference {
  const form = docker.form
  const colon = s.indexOf(':')
  const name = colon < 0 ? '' : s.slice(0, colon)
  if (s.startsWith('docker://')) return asUsage(s, form, () => dockerReference(parseDockerReference(s.slice('docker://'.length)), false))
  if (syntaxOf(name)) throw new LadingError('USAGE', `invalid reference ${JSON.stringify(s)}: not a registry reference (expected ${form})`)
  return asUsage(s, form, () => dockerReference(parseDockerReference(s), false))
}

export function formatReference(r: ImageReference): string {
  return (REFERENCE_SYNTAX[r.transport] as ReferenceSyntax).format(r)
}

/** The one display form of where an image lives (no tag or digest), for messages and labels. */
export function displayReference(r: ImageReference): string {
  return (REFERENCE_SYNTAX[r.transport] as ReferenceSyntax).display(r)
}

/** The normalised `registry/repository:tag` of a Docker name (docker-archive RepoTags), as skopeo writes it. */
export function dockerRepoTag(name: string, tag: string): string {
  const n = parseDockerName(name)
  if (!isValidTag(tag)) throw invalid(`invalid tag ${JSON.stringify(tag)}`)
  return `${n.registry}/${n.repository}:${tag}`
}
