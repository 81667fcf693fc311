/**
 * The one Docker reference grammar (src/transport/docker-reference.ts). Before it there were
 * three parsers (transport/reference.ts, transport/registry/docker-reference.ts,
 * transport/registry/names.ts) that answered differently; each test below is one of those
 * disagreements, with the answer chosen (distribution/reference's, unless its comment says why
 * not), checked through every entry point that used to have its own rule: `parseReference`
 * (copy, inspect), `parseRegistryReference` (list-tags, delete), `parseDockerName` (the registry
 * client, auth) and the docker-archive RepoTag (`dockerRepoTag`).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isLadingError } from '../../src/errors.js'
import { DOCKER_HUB, isValidRegistryHost, normalizeAuthKey, parseDockerName, parseDockerReference } from '../../src/transport/docker-reference.js'
import { displayReference, dockerRepoTag, formatReference, parseReference, parseRegistryReference } from '../../src/transport/reference.js'
import type { ImageReference } from '../../src/transport/types.js'

const HEX = 'a'.repeat(64)

/** Every entry point's reading of `name` (no tag), as `registry/repository`. */
function readings(name: string): string[] {
  const r = parseReference(`docker://${name}`) as Extract<ImageReference, { transport: 'docker' }>
  const g = parseRegistryReference(name)
  const n = parseDockerName(name)
  const a = parseReference(`docker-archive:x.tar:${name}`) as Extract<ImageReference, { transport: 'docker-archive' }>
  return [
    `${r.registry}/${r.repository}`,
    `${g.registry}/${g.repository}`,
    `${n.registry}/${n.repository}`,
    dockerRepoTag(a.name!, 'latest').replace(/:latest$/, ''),
  ]
}

function allRefuse(name: string, why: RegExp): void {
  assert.throws(
    () => parseReference(`docker://${name}`),
    (e) => isLadingError(e, 'USAGE') && why.test((e as Error).message),
    `docker://${name}`,
  )
  assert.throws(
    () => parseRegistryReference(name),
    (e) => isLadingError(e, 'USAGE') && why.test((e as Error).message),
    name,
  )
  assert.throws(
    () => parseDockerName(name),
    (e) => isLadingError(e, 'INVALID_REFERENCE') && why.test((e as Error).message),
    name,
  )
  assert.throws(
    () => parseReference(`docker-archive:x.tar:${name}`),
    (e) => isLadingError(e, 'USAGE') && why.test((e as Error).message),
    `docker-archive:x.tar:${name}`,
  )
}

test('docker reference: registry-1.docker.io is Docker Hub everywhere (was: a registry of its own for copy, Hub for the registry commands)', () => {
  for (const name of ['registry-1.docker.io/busybox', 'index.docker.io/busybox', 'docker.io/busybox', 'busybox', 'docker.io/library/busybox']) {
    assert.deepEqual(readings(name), Array(4).fill('docker.io/library/busybox'), name)
  }
  assert.deepEqual(readings('registry-1.docker.io/user/app'), Array(4).fill('docker.io/user/app'))
  // Auth-file keys fold the same names (and the config-file alias registry.hub.docker.com).
  for (const key of ['registry-1.docker.io', 'index.docker.io', 'https://index.docker.io/v1/', 'registry.hub.docker.com'])
    assert.equal(normalizeAuthKey(key), DOCKER_HUB, key)
})

test('docker reference: a port is 1..65535 everywhere (was: any digits for copy, at most five digits for the registry commands)', () => {
  assert.deepEqual(readings('localhost:65535/a'), Array(4).fill('localhost:65535/a'))
  assert.deepEqual(readings('[::1]:5000/a'), Array(4).fill('[::1]:5000/a'))
  for (const name of ['localhost:65536/a', 'localhost:99999/a', 'localhost:123456/a', 'localhost:0/a', 'localhost:/a']) allRefuse(name, /invalid registry/)
  assert.equal(isValidRegistryHost('r.io:443'), true)
  assert.equal(isValidRegistryHost('r.io:70000'), false)
})

test('docker reference: 255 characters for the whole normalised name (was: the repository alone for the registry commands)', () => {
  const repo = `a/${'b'.repeat(240)}` // 242 characters: a valid repository alone, but not with its registry
  assert.equal(`example.com:5000/${repo}`.length > 255, true)
  allRefuse(`example.com:5000/${repo}`, /longer than 255/)
  // Counted after normalisation, as distribution/reference does: `library/` counts.
  const hub = 'c'.repeat(255 - 'docker.io/library/'.length)
  assert.deepEqual(readings(hub), Array(4).fill(`docker.io/library/${hub}`))
  allRefuse(`${hub}c`, /longer than 255/)
})

test('docker reference: a 64-hex name is an image ID, not a repository (was: accepted by all three; distribution/reference refuses it)', () => {
  allRefuse(HEX, /image ID/)
  assert.deepEqual(readings(`r.io/${HEX}`), Array(4).fill(`r.io/${HEX}`), 'as a path component below a registry it is a name')
})

test('docker reference: bad names are INVALID_REFERENCE at the core and USAGE naming the form at the command line (was: INVALID_REFERENCE or USAGE by parser)', () => {
  for (const [name, why] of [
    ['Upper/case', /lowercase/],
    ['a//b', /invalid repository component ""/],
    ['host:5000/', /invalid repository component/],
    ['a/-b', /invalid repository component/],
    ['', /empty repository name/],
    ['a..b/c', /invalid registry/],
  ] as const) {
    allRefuse(name, why)
  }
  assert.throws(
    () => parseReference('docker://a/b:'),
    (e) => isLadingError(e, 'USAGE') && /invalid tag "".*expected docker:\/\//.test((e as Error).message),
  )
  assert.throws(
    () => parseDockerReference(`a:${'t'.repeat(129)}`),
    (e) => isLadingError(e, 'INVALID_REFERENCE') && /invalid tag/.test((e as Error).message),
  )
})

test('docker reference: the registry commands take docker:// or a bare name, never another transport (was: `oci:x` read as docker.io/library/oci:x)', () => {
  assert.deepEqual(parseRegistryReference('docker://r.io/a:t'), parseRegistryReference('r.io/a:t'))
  for (const s of ['oci:x', 'dir:/tmp/x', 'docker-archive:a.tar', 'docker:busybox']) {
    assert.throws(
      () => parseRegistryReference(s),
      (e) => isLadingError(e, 'USAGE') && /not a registry reference/.test((e as Error).message),
      s,
    )
  }
  // A registry with a port is not a transport prefix.
  assert.deepEqual(parseRegistryReference('localhost:5000/x'), { transport: 'docker', registry: 'localhost:5000', repository: 'x' })
})

test("docker reference: the default tag is the caller's (copy names latest as skopeo; list-tags must see that none was given)", () => {
  assert.deepEqual(parseReference('docker://busybox'), { transport: 'docker', registry: 'docker.io', repository: 'library/busybox', tag: 'latest' })
  assert.deepEqual(parseRegistryReference('docker://busybox'), { transport: 'docker', registry: 'docker.io', repository: 'library/busybox' })
  assert.deepEqual(parseReference(`docker://busybox@sha256:${HEX}`), parseRegistryReference(`busybox@sha256:${HEX}`), 'a digest alone: no tag for either')
})

test('docker reference: docker-archive RepoTags use the same grammar (was: a colon split of their own)', () => {
  assert.equal(dockerRepoTag('busybox', '1.36'), 'docker.io/library/busybox:1.36')
  assert.equal(dockerRepoTag('registry-1.docker.io/x/y', 'v'), 'docker.io/x/y:v')
  assert.throws(
    () => dockerRepoTag('Busybox', 'v'),
    (e) => isLadingError(e, 'INVALID_REFERENCE'),
  )
  assert.throws(
    () => dockerRepoTag('busybox', 'bad tag'),
    (e) => isLadingError(e, 'INVALID_REFERENCE') && /invalid tag/.test((e as Error).message),
    'the tag too (was: written into RepoTags unchecked)',
  )
})

test('reference display: one form per transport, without tag or digest (was: six spellings, one without docker://)', () => {
  const cases: Array<[string, string]> = [
    [`oci:/l:t`, 'oci:/l'],
    [`oci:/l@sha256:${HEX}`, 'oci:/l'],
    ['oci-archive:/a.tar:t', 'oci-archive:/a.tar'],
    ['docker-archive:/a.tar:busybox:v', 'docker-archive:/a.tar'],
    ['dir:/d', 'dir:/d'],
    ['docker://busybox:1', 'docker://docker.io/library/busybox'],
    [`docker://r.io:5000/a/b@sha256:${HEX}`, 'docker://r.io:5000/a/b'],
  ]
  for (const [s, shown] of cases) {
    const r = parseReference(s)
    assert.equal(displayReference(r), shown, s)
    assert.equal(formatReference(r).startsWith(shown), true, `${s}: the display form is a prefix of the canonical one`)
  }
})
