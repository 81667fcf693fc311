/**
 * Copies chosen tags of an OCI image layout (the fixture, written by umoci) into a new layout on the
 * medium under test, with exactly the blobs those tags reach. This is the harness's own plumbing, not
 * Lading code: the benchmark must not depend on the thing it measures to set itself up. It trusts its
 * input (the fixture script made it) and follows only manifests and plain (non-nested) indexes.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'

const REF_NAME = 'org.opencontainers.image.ref.name'

interface Desc {
  mediaType?: string
  digest: string
  size: number
  annotations?: Record<string, string>
}

export function blobPath(layout: string, digest: string): string {
  const [alg, hex] = digest.split(':')
  if (!alg || !hex) throw new Error(`not a digest: ${digest}`)
  return path.join(layout, 'blobs', alg, hex)
}

function readJson(file: string): any {
  return JSON.parse(readFileSync(file, 'utf8'))
}

/** The layer descriptors of the image a tag names (tag must point at a manifest). */
export function layersOf(layout: string, tag: string): Desc[] {
  const index = readJson(path.join(layout, 'index.json'))
  const entry = (index.manifests as Desc[]).find((m) => m.annotations?.[REF_NAME] === tag)
  if (!entry) throw new Error(`${layout}: no tag ${tag}`)
  return readJson(blobPath(layout, entry.digest)).layers as Desc[]
}

export function copyLayoutTags(src: string, dst: string, tags: string[]): void {
  const index = readJson(path.join(src, 'index.json'))
  const entries = (index.manifests as Desc[]).filter((m) => tags.includes(m.annotations?.[REF_NAME] ?? ''))
  if (entries.length !== tags.length) throw new Error(`${src}: missing some of the tags ${tags.join(', ')}`)
  const seen = new Set<string>()
  mkdirSync(path.join(dst, 'blobs', 'sha256'), { recursive: true })
  const copy = (d: Desc): void => {
    if (seen.has(d.digest)) return
    seen.add(d.digest)
    const to = blobPath(dst, d.digest)
    mkdirSync(path.dirname(to), { recursive: true })
    copyFileSync(blobPath(src, d.digest), to)
  }
  const walk = (d: Desc): void => {
    copy(d)
    const doc = readJson(blobPath(src, d.digest))
    if (Array.isArray(doc.manifests)) for (const m of doc.manifests as Desc[]) walk(m)
    if (doc.config) copy(doc.config as Desc)
    if (Array.isArray(doc.layers)) for (const l of doc.layers as Desc[]) copy(l)
  }
  for (const e of entries) walk(e)
  copyFileSync(path.join(src, 'oci-layout'), path.join(dst, 'oci-layout'))
  writeFileSync(path.join(dst, 'index.json'), JSON.stringify({ ...index, manifests: entries }))
}
