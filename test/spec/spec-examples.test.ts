/**
 * The image-spec's own example documents are test vectors: every ```json block labelled with a
 * media type in image-spec v1.1.1 (manifest.md, image-index.md, ...) parses with the matching
 * parser, and altered copies fail with the right code and JSON pointer. The blocks are kept in
 * ./examples/ (see its README.md), so the tests need nothing outside the repository.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { isLadingError, type ErrorCode } from '../../src/errors.js'
import { parseConfig, parseDescriptor, parseIndex, parseLayoutFile, parseManifest } from '../../src/spec/parse.js'
import { checkConfig, checkDescriptor, checkIndex, checkManifest } from '../../src/spec/validate.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const examplesDir = path.join(repoRoot, 'test/spec/examples')

interface Example {
  file: string
  line: number
  mediaType: string
  json: string
}

const KINDS: Record<string, string> = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  descriptor: 'application/vnd.oci.descriptor.v1+json',
  layout: 'application/vnd.oci.layout.header.v1+json',
}

/** ./examples/FILE-L<line>.<kind>.json: the block at that line of image-spec's FILE.md. */
function examples(): Example[] {
  const out: Example[] = []
  for (const name of readdirSync(examplesDir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const m = /^(.+)-L(\d+)\.(\w+)\.json$/.exec(name)
    assert.ok(m && KINDS[m[3]!] !== undefined, `unexpected file name ${name} in ${examplesDir}`)
    out.push({ file: `${m[1]!}.md`, line: Number(m[2]), mediaType: KINDS[m[3]!]!, json: readFileSync(path.join(examplesDir, name), 'utf8') })
  }
  return out
}

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const INDEX = 'application/vnd.oci.image.index.v1+json'
const CONFIG = 'application/vnd.oci.image.config.v1+json'
const DESCRIPTOR = 'application/vnd.oci.descriptor.v1+json'
const LAYOUT = 'application/vnd.oci.layout.header.v1+json'

function parseAs(ex: { mediaType: string; json: string }, source: string): unknown {
  const bytes = Buffer.from(ex.json)
  switch (ex.mediaType) {
    case MANIFEST:
      return parseManifest(bytes, source, MANIFEST)
    case INDEX:
      return parseIndex(bytes, source, INDEX)
    case CONFIG:
      return parseConfig(bytes, source)
    case DESCRIPTOR:
      return parseDescriptor(JSON.parse(ex.json), source)
    case LAYOUT:
      return parseLayoutFile(bytes, source)
    default:
      throw new Error(`no parser for ${ex.mediaType}`)
  }
}

test('every labelled example document in image-spec parses', () => {
  const all = examples()
  const counts: Record<string, number> = {}
  for (const ex of all) {
    const source = `${ex.file}:${ex.line}`
    assert.doesNotThrow(() => parseAs(ex, source), source)
    counts[ex.mediaType] = (counts[ex.mediaType] ?? 0) + 1
  }
  // image-spec v1.1.1 has 13 such blocks; guard against the extractor silently finding none.
  assert.ok(all.length >= 13, `found only ${all.length} examples`)
  assert.ok(
    (counts[MANIFEST] ?? 0) >= 4 && (counts[INDEX] ?? 0) >= 3 && (counts[CONFIG] ?? 0) >= 1 && (counts[DESCRIPTOR] ?? 0) >= 3 && (counts[LAYOUT] ?? 0) >= 1,
    JSON.stringify(counts),
  )
})

type Alteration = { what: string; edit: (v: any) => void; code: ErrorCode; pointer: string; problemCode?: ErrorCode; message?: RegExp }

const ALTERATIONS: Record<string, Alteration[]> = {
  [MANIFEST]: [
    {
      what: 'upper-case layer digest',
      edit: (m) => {
        if (m.layers.length) m.layers[0].digest = m.layers[0].digest.toUpperCase().replace('SHA256', 'sha256')
        else m.config.digest = m.config.digest.toUpperCase().replace('SHA256', 'sha256')
      },
      code: 'INVALID_MANIFEST',
      pointer: '',
      problemCode: 'DIGEST_INVALID',
      message: /lowercase hex/,
    },
    {
      what: 'schemaVersion 3',
      edit: (m) => {
        m.schemaVersion = 3
      },
      code: 'INVALID_MANIFEST',
      pointer: '/schemaVersion',
      message: /must be 2/,
    },
    {
      what: 'schema 1',
      edit: (m) => {
        m.schemaVersion = 1
      },
      code: 'UNSUPPORTED',
      pointer: '/schemaVersion',
      problemCode: 'UNSUPPORTED',
    },
    {
      what: 'no config',
      edit: (m) => {
        delete m.config
      },
      code: 'INVALID_MANIFEST',
      pointer: '/config',
      message: /required field is missing/,
    },
    {
      what: 'index media type',
      edit: (m) => {
        m.mediaType = INDEX
      },
      code: 'INVALID_MANIFEST',
      pointer: '/mediaType',
      message: /not an image manifest/,
    },
    {
      what: 'negative config size',
      edit: (m) => {
        m.config.size = -1
      },
      code: 'INVALID_MANIFEST',
      pointer: '/config/size',
      message: /non-negative integer/,
    },
    {
      what: 'non-string annotation',
      edit: (m) => {
        m.annotations = { a: 1 }
      },
      code: 'INVALID_MANIFEST',
      pointer: '/annotations/a',
      message: /must be a string/,
    },
  ],
  [INDEX]: [
    {
      what: 'size as a string',
      edit: (i) => {
        i.manifests[0].size = String(i.manifests[0].size)
      },
      code: 'INVALID_INDEX',
      pointer: '/manifests/0/size',
    },
    {
      what: 'platform without os',
      edit: (i) => {
        i.manifests[0].platform = { architecture: 'amd64' }
      },
      code: 'INVALID_INDEX',
      pointer: '/manifests/0/platform/os',
      message: /required/,
    },
    {
      what: 'manifests not an array',
      edit: (i) => {
        i.manifests = {}
      },
      code: 'INVALID_INDEX',
      pointer: '/manifests',
    },
    {
      what: 'bad media type grammar',
      edit: (i) => {
        i.manifests[0].mediaType = 'not a media type'
      },
      code: 'INVALID_INDEX',
      pointer: '/manifests/0/mediaType',
      message: /RFC 6838/,
    },
    {
      what: 'bad ref.name',
      edit: (i) => {
        i.manifests[0].annotations = { 'org.opencontainers.image.ref.name': 'bad tag!' }
      },
      code: 'INVALID_INDEX',
      pointer: '/manifests/0/annotations/org.opencontainers.image.ref.name',
      problemCode: 'TAG_INVALID',
    },
  ],
  [CONFIG]: [
    {
      what: 'rootfs.type tar',
      edit: (c) => {
        c.rootfs.type = 'tar'
      },
      code: 'INVALID_CONFIG',
      pointer: '/rootfs/type',
      message: /must be "layers"/,
    },
    {
      what: 'created not RFC 3339',
      edit: (c) => {
        c.created = '2015-10-31 22:22:56'
      },
      code: 'INVALID_CONFIG',
      pointer: '/created',
      message: /RFC 3339/,
    },
    {
      what: 'bad exposed port',
      edit: (c) => {
        c.config.ExposedPorts = { '80/icmp': {} }
      },
      code: 'INVALID_CONFIG',
      pointer: '/config/ExposedPorts/80~1icmp',
      message: /invalid port/,
    },
    {
      what: 'short diff_id',
      edit: (c) => {
        c.rootfs.diff_ids[0] = c.rootfs.diff_ids[0].slice(0, 20)
      },
      code: 'INVALID_CONFIG',
      pointer: '/rootfs/diff_ids/0',
      problemCode: 'DIGEST_INVALID',
    },
    {
      what: 'no architecture',
      edit: (c) => {
        delete c.architecture
      },
      code: 'INVALID_CONFIG',
      pointer: '/architecture',
      message: /required/,
    },
    {
      what: 'Env not strings',
      edit: (c) => {
        c.config.Env = [1]
      },
      code: 'INVALID_CONFIG',
      pointer: '/config/Env/0',
    },
    {
      what: 'history empty_layer not boolean',
      edit: (c) => {
        c.history[0].empty_layer = 'yes'
      },
      code: 'INVALID_CONFIG',
      pointer: '/history/0/empty_layer',
    },
  ],
  [DESCRIPTOR]: [
    {
      what: 'media type without subtype',
      edit: (d) => {
        d.mediaType = 'application'
      },
      code: 'INVALID_DOCUMENT',
      pointer: '/mediaType',
    },
    {
      what: 'fractional size',
      edit: (d) => {
        d.size = 1.5
      },
      code: 'INVALID_DOCUMENT',
      pointer: '/size',
    },
    {
      what: 'url not a URL',
      edit: (d) => {
        d.urls = ['not a url']
      },
      code: 'INVALID_DOCUMENT',
      pointer: '/urls/0',
      message: /invalid URL/,
    },
    {
      what: 'data not matching',
      edit: (d) => {
        d.data = Buffer.from('something else').toString('base64')
      },
      code: 'INVALID_DOCUMENT',
      pointer: '/data',
      problemCode: 'SIZE_MISMATCH',
      message: /embedded data: size mismatch/,
    },
  ],
  [LAYOUT]: [
    {
      what: 'unknown imageLayoutVersion',
      edit: (l) => {
        l.imageLayoutVersion = '1.1.0'
      },
      code: 'UNSUPPORTED',
      pointer: '/imageLayoutVersion',
      problemCode: 'UNSUPPORTED',
    },
  ],
}

function checkAs(mediaType: string, v: unknown, source: string) {
  switch (mediaType) {
    case MANIFEST:
      return checkManifest(v, source, MANIFEST)
    case INDEX:
      return checkIndex(v, source, INDEX)
    case CONFIG:
      return checkConfig(v, source)
    case DESCRIPTOR:
      return checkDescriptor(v, source)
    default:
      return undefined
  }
}

test('altered copies of the examples fail with the right code and pointer', () => {
  let n = 0
  for (const ex of examples()) {
    for (const alt of ALTERATIONS[ex.mediaType] ?? []) {
      const v = JSON.parse(ex.json)
      alt.edit(v)
      const source = `${ex.file}:${ex.line} altered: ${alt.what}`
      assert.throws(
        () => parseAs({ mediaType: ex.mediaType, json: JSON.stringify(v) }, source),
        (e: unknown) => {
          assert.ok(isLadingError(e), `${source}: ${String(e)}`)
          assert.equal(e.code, alt.code, `${source}: ${e.message}`)
          assert.ok(e.message.startsWith(`${source}: /`), e.message)
          if (alt.pointer) assert.ok(e.message.includes(`: ${alt.pointer}: `), `${source}: expected pointer ${alt.pointer} in ${e.message}`)
          if (alt.message) assert.match(e.message, alt.message)
          return true
        },
        source,
      )
      const problems = checkAs(ex.mediaType, v, source)
      if (problems && alt.pointer) {
        const p = problems.find((x) => x.pointer === alt.pointer)
        assert.ok(p, `${source}: no problem at ${alt.pointer}: ${JSON.stringify(problems)}`)
        assert.equal(p.code, alt.problemCode ?? alt.code)
      }
      n++
    }
  }
  assert.ok(n >= 40, `only ${n} alterations ran`)
})
