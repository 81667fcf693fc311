/**
 * The one referrer rule (src/spec/referrer.ts) and the one manifest media-type sniffer
 * (spec/parse.ts sniffManifestMediaType). Before them, four places decided "is this a
 * referrer, of what, with which artifactType and annotations" and gave different answers for
 * the same layout: the layout scan (store/referrers.ts, used by gc and Layout.listReferrers), the
 * oci source's listReferrers (an empty artifactType hid the config's; an index's stray `config`
 * became its artifactType; annotations were copied unchecked), the registry client's referrers-tag
 * fallback, and the layout destination (any `subject` value, even null, made a referrer). Each
 * test shows the callers agreeing on documents where they used to differ.
 */
import assert from 'node:assert/strict'
import { promises as fsp } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { digestOf, type Digest } from '../../src/digest/digest.js'
import { isLadingError } from '../../src/errors.js'
import { MediaType } from '../../src/spec/media-types.js'
import { sniffManifestMediaType } from '../../src/spec/parse.js'
import { referrerOf } from '../../src/spec/referrer.js'
import type { Descriptor } from '../../src/spec/types.js'
import { Layout } from '../../src/store/layout.js'
import { openDestination, openSource } from '../../src/transport/open.js'
import { parseReference } from '../../src/transport/reference.js'
import { RegistryClient, referrersTag } from '../../src/transport/registry/client.js'
import { RawLayout } from '../helpers/raw-layout.js'
import { registryAvailable, startRegistry, type RunningRegistry } from '../helpers/registry.js'
import path from 'node:path'
import { tempDir } from '../fixtures/temp.js'

const CFG = 'application/vnd.example.config.v1+json'
const SBOM = 'application/vnd.example.sbom.v1'
const EMPTY = Buffer.from('{}')
const EMPTY_DESC = { mediaType: CFG, digest: digestOf(EMPTY), size: EMPTY.length }

interface Case {
  name: string
  noRegistry?: boolean
  doc: Record<string, unknown>
  mediaType: string
  expect: Omit<Descriptor, 'digest' | 'size' | 'mediaType'> | undefined
}

function cases(subject: Descriptor): Case[] {
  const s = { mediaType: subject.mediaType, digest: subject.digest, size: subject.size }
  return [
    // artifactType "" counts as missing: the config's media type (the oci source used to omit it).
    {
      name: 'empty artifactType',
      mediaType: MediaType.OciManifest,
      doc: { schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType: '', config: EMPTY_DESC, layers: [], subject: s },
      expect: { artifactType: CFG },
    },
    // An index never takes a config's type (the oci source used to take a stray one). The
    // distribution registry refuses an index with a config, so it is not pushed there.
    {
      name: 'index with a stray config',
      noRegistry: true,
      mediaType: MediaType.OciIndex,
      doc: { schemaVersion: 2, mediaType: MediaType.OciIndex, config: EMPTY_DESC, manifests: [], subject: s, annotations: { 'org.example.a': 'x' } },
      expect: { annotations: { 'org.example.a': 'x' } },
    },
    // Only string annotations are listed (the oci source and the client used to copy them unchecked).
    // The distribution registry refuses such a document outright, so it is not pushed there.
    {
      name: 'non-string annotation',
      noRegistry: true,
      mediaType: MediaType.OciManifest,
      doc: {
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: SBOM,
        config: EMPTY_DESC,
        layers: [],
        subject: s,
        annotations: { 'org.example.a': 'y', 'org.example.n': 1 },
      },
      expect: { artifactType: SBOM, annotations: { 'org.example.a': 'y' } },
    },
    { name: 'plain index', mediaType: MediaType.OciIndex, doc: { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [], subject: s }, expect: {} },
    // Its own artifactType wins; an empty annotation map is omitted (the client used to keep it only if non-empty, the source always).
    {
      name: 'own artifactType',
      mediaType: MediaType.OciManifest,
      doc: { schemaVersion: 2, mediaType: MediaType.OciManifest, artifactType: SBOM, config: EMPTY_DESC, layers: [], subject: s, annotations: {} },
      expect: { artifactType: SBOM },
    },
    // A subject without a valid digest is no subject (the layout destination used to count it).
    {
      name: 'subject without a digest',
      mediaType: MediaType.OciManifest,
      doc: {
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: SBOM,
        config: EMPTY_DESC,
        layers: [],
        subject: { mediaType: MediaType.OciManifest, size: 2 },
      },
      expect: undefined,
    },
  ]
}

function expected(c: Case, bytes: Buffer): Descriptor | undefined {
  return c.expect && { mediaType: c.mediaType, digest: digestOf(bytes), size: bytes.length, ...c.expect }
}

const byDigest = (ds: readonly Descriptor[]): Descriptor[] => [...ds].sort((a, b) => a.digest.localeCompare(b.digest))

describe('referrers: one rule in spec/referrer.ts', () => {
  let raw: RawLayout
  let subject: Descriptor
  let docs: Array<{ c: Case; bytes: Buffer }>

  before(async () => {
    raw = await RawLayout.create('lading-referrer-')
    const img = await raw.addImage({ tag: 'v' })
    subject = img.manifestDescriptor as unknown as Descriptor
    await raw.writeBlob(EMPTY, CFG)
    docs = cases(subject).map((c) => ({ c, bytes: Buffer.from(JSON.stringify(c.doc)) }))
    for (const { c, bytes } of docs) await raw.addToIndex(await raw.writeBlob(bytes, c.mediaType))
  })
  after(() => fsp.rm(raw.dir, { recursive: true, force: true }))

  test('the rule itself, document by document', () => {
    for (const { c, bytes } of docs) {
      const r = referrerOf(bytes, { digest: digestOf(bytes), size: bytes.length })
      assert.deepEqual(r?.descriptor, expected(c, bytes), c.name)
      if (r) assert.equal(r.subject, subject.digest)
    }
  })

  test('the layout scan (gc, Layout.listReferrers) and the oci source list the same referrers', async () => {
    const want = byDigest(docs.map(({ c, bytes }) => expected(c, bytes)).filter((d): d is Descriptor => d !== undefined))
    const layout = await Layout.open(raw.dir)
    assert.deepEqual(byDigest(await layout.listReferrers(subject.digest)), want, 'store scan')
    const src = await openSource(parseReference(`oci:${raw.dir}:v`))
    try {
      assert.deepEqual(byDigest(await src.listReferrers!(subject.digest)), want, 'oci source')
    } finally {
      await src.close()
    }
  })

  test('the layout destination records as referrers exactly the documents the rule calls referrers', async (t) => {
    const dir = path.join(tempDir(t, { prefix: 'lading-referrer-' }), 'dest')
    const dest = await openDestination(parseReference(`oci:${dir}`))
    try {
      // Blobs first, as a copy puts them; the subject is not needed in the destination.
      await dest.putBlob((await import('node:stream')).Readable.from([EMPTY]), { digest: EMPTY_DESC.digest, size: EMPTY_DESC.size })
      const stored: string[] = []
      for (const { c, bytes } of docs) {
        try {
          await dest.putManifest({ bytes, mediaType: c.mediaType, digest: digestOf(bytes) })
          stored.push(digestOf(bytes))
        } catch (e) {
          // The layout's validator may refuse a document outright; then no rule was asked.
          assert.ok(isLadingError(e), String(e))
        }
      }
      const top = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: EMPTY_DESC, layers: [] }))
      await dest.putManifest({ bytes: top, mediaType: MediaType.OciManifest, digest: digestOf(top) }, 't')
      await dest.commit()
      const index = JSON.parse(await fsp.readFile(`${dir}/index.json`, 'utf8')) as { manifests: Descriptor[] }
      const recorded = new Set(index.manifests.map((d) => d.digest))
      for (const { c, bytes } of docs) {
        const d = digestOf(bytes)
        if (!stored.includes(d)) continue
        assert.equal(recorded.has(d), c.expect !== undefined, `${c.name}: recorded as a referrer iff the rule says so`)
      }
      assert.ok(stored.length >= 2, `at least two of the documents were stored (${stored.length})`)
    } finally {
      await dest.close()
    }
  })

  const skip = registryAvailable() ? false : process.env.CI === 'true' ? false : 'docker-registry not installed'
  describe('the registry client referrers-tag fallback', { skip }, () => {
    let reg: RunningRegistry
    let client: RegistryClient
    before(async () => {
      reg = await startRegistry()
      client = new RegistryClient({ registry: reg.host, tlsVerify: false })
    })
    after(async () => {
      await client.close()
      await reg.stop()
    })

    test('gives each referrer the descriptor the layout gives it', async () => {
      const repo = 'referrers/rule'
      // The subject and the config blob, so that the registry accepts the referrers.
      const sub = await fsp.readFile(raw.blobPath(subject.digest))
      const subDoc = JSON.parse(sub.toString('utf8')) as { config: Descriptor; layers: Descriptor[] }
      for (const b of [subDoc.config, ...subDoc.layers])
        await client.putBlob(repo, (await import('node:stream')).Readable.from([await fsp.readFile(raw.blobPath(b.digest))]), b)
      await client.putManifest(repo, 'v', { bytes: sub, mediaType: subject.mediaType, digest: subject.digest as Digest })
      await client.putBlob(repo, (await import('node:stream')).Readable.from([EMPTY]), EMPTY_DESC)
      const pushed: Descriptor[] = []
      for (const { c, bytes } of docs) {
        if (c.expect === undefined || c.noRegistry) continue // not a referrer (no referrers-tag entry), or refused by the registry
        await client.putManifest(repo, digestOf(bytes), { bytes, mediaType: c.mediaType, digest: digestOf(bytes) })
        pushed.push(expected(c, bytes)!)
      }
      const listed = await client.listReferrers(repo, subject.digest)
      assert.deepEqual(byDigest(listed), byDigest(pushed))
      const tagIndex = JSON.parse((await client.getManifest(repo, referrersTag(subject.digest))).bytes.toString('utf8')) as { manifests: Descriptor[] }
      assert.deepEqual(byDigest(tagIndex.manifests), byDigest(pushed), 'the fallback tag holds the same descriptors')
    })
  })
})

describe('manifest media type: one sniffer (spec/parse.ts) for stores, sources and the registry client', () => {
  const sniff = (o: unknown): { mediaType: string; declared: boolean } => sniffManifestMediaType(Buffer.from(JSON.stringify(o)), 'm')
  test('a declared mediaType wins; otherwise the shape', () => {
    assert.deepEqual(sniff({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: {} }), { mediaType: MediaType.DockerManifest, declared: true })
    assert.deepEqual(sniff({ schemaVersion: 2, manifests: [] }), { mediaType: MediaType.OciIndex, declared: false })
    assert.deepEqual(sniff({ schemaVersion: 2, config: {} }), { mediaType: MediaType.OciManifest, declared: false })
  })
  test("where the registry client's copy disagreed: layers alone is a manifest, a non-array manifests an index (the parser then says what is wrong)", () => {
    assert.equal(sniff({ schemaVersion: 2, layers: [] }).mediaType, MediaType.OciManifest)
    assert.equal(sniff({ schemaVersion: 2, manifests: {} }).mediaType, MediaType.OciIndex)
  })
  test('where it disagreed on errors: schema 1 is UNSUPPORTED at once, a non-object INVALID_DOCUMENT, bad JSON INVALID_JSON', () => {
    assert.throws(
      () => sniff({ schemaVersion: 1, fsLayers: [] }),
      (e) => isLadingError(e, 'UNSUPPORTED'),
    )
    assert.throws(
      () => sniff([1]),
      (e) => isLadingError(e, 'INVALID_DOCUMENT'),
    )
    assert.throws(
      () => sniffManifestMediaType(Buffer.from('{'), 'm'),
      (e) => isLadingError(e, 'INVALID_JSON'),
    )
    assert.throws(
      () => sniff({ schemaVersion: 2 }),
      (e) => isLadingError(e, 'INVALID_DOCUMENT'),
    )
  })
})
