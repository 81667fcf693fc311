import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isLadingError } from '../../src/errors.js'
import { formatReference, parseReference } from '../../src/transport/reference.js'

const HEX = 'a'.repeat(64)

test('reference: parse of each transport form', () => {
  assert.deepEqual(parseReference('oci:/tmp/layout'), { transport: 'oci', dir: '/tmp/layout' })
  assert.deepEqual(parseReference('oci:/tmp/layout:v1'), { transport: 'oci', dir: '/tmp/layout', tag: 'v1' })
  // A tag may contain '/' and ':' (image-layout.md ref.name); the path ends at the first colon, as in skopeo.
  assert.deepEqual(parseReference('oci:l:library/busybox:1.36'), { transport: 'oci', dir: 'l', tag: 'library/busybox:1.36' })
  assert.deepEqual(parseReference(`oci:./l@sha256:${HEX}`), { transport: 'oci', dir: './l', digest: `sha256:${HEX}` })
  assert.deepEqual(parseReference(`oci:./l:@sha256:${HEX}`), { transport: 'oci', dir: './l', digest: `sha256:${HEX}` })
  assert.deepEqual(parseReference('oci-archive:/x/img.tar:latest'), { transport: 'oci-archive', file: '/x/img.tar', tag: 'latest' })
  assert.deepEqual(parseReference('oci-archive:img.tar'), { transport: 'oci-archive', file: 'img.tar' })
  assert.deepEqual(parseReference('docker-archive:a.tar'), { transport: 'docker-archive', file: 'a.tar' })
  assert.deepEqual(parseReference('docker-archive:a.tar:busybox'), { transport: 'docker-archive', file: 'a.tar', name: 'busybox', tag: 'latest' })
  assert.deepEqual(parseReference('docker-archive:a.tar:localhost:5000/x/y:v2'), {
    transport: 'docker-archive',
    file: 'a.tar',
    name: 'localhost:5000/x/y',
    tag: 'v2',
  })
  assert.deepEqual(parseReference('docker-archive:a.tar:@1'), { transport: 'docker-archive', file: 'a.tar', sourceIndex: 1 })
  assert.deepEqual(parseReference('docker-archive:-'), { transport: 'docker-archive', file: '-' })
  assert.deepEqual(parseReference('dir:/some/where:odd'), { transport: 'dir', dir: '/some/where:odd' })
})

test('reference: docker:// default registry, library/ expansion and the domain heuristic', () => {
  assert.deepEqual(parseReference('docker://busybox'), { transport: 'docker', registry: 'docker.io', repository: 'library/busybox', tag: 'latest' })
  assert.deepEqual(parseReference('docker://user/app:1.0'), { transport: 'docker', registry: 'docker.io', repository: 'user/app', tag: '1.0' })
  assert.deepEqual(parseReference('docker://index.docker.io/busybox'), {
    transport: 'docker',
    registry: 'docker.io',
    repository: 'library/busybox',
    tag: 'latest',
  })
  assert.deepEqual(parseReference('docker://quay.io/org/app:v'), { transport: 'docker', registry: 'quay.io', repository: 'org/app', tag: 'v' })
  assert.deepEqual(parseReference('docker://localhost/app'), { transport: 'docker', registry: 'localhost', repository: 'app', tag: 'latest' })
  assert.deepEqual(parseReference('docker://127.0.0.1:5000/a/b:t'), { transport: 'docker', registry: '127.0.0.1:5000', repository: 'a/b', tag: 't' })
  assert.deepEqual(parseReference('docker://myhost:5000/app'), { transport: 'docker', registry: 'myhost:5000', repository: 'app', tag: 'latest' })
  // No dot, colon or localhost: a first component is a namespace on docker.io.
  assert.deepEqual(parseReference('docker://myhost/app'), { transport: 'docker', registry: 'docker.io', repository: 'myhost/app', tag: 'latest' })
  assert.deepEqual(parseReference(`docker://r.io/a@sha256:${HEX}`), { transport: 'docker', registry: 'r.io', repository: 'a', digest: `sha256:${HEX}` })
  assert.deepEqual(parseReference(`docker://r.io/a:t@sha256:${HEX}`), {
    transport: 'docker',
    registry: 'r.io',
    repository: 'a',
    tag: 't',
    digest: `sha256:${HEX}`,
  })
})

test('reference: format(parse(s)) parses back to the same value', () => {
  const inputs = [
    'oci:/tmp/layout',
    'oci:/tmp/layout:v1',
    'oci:l:library/busybox:1.36',
    `oci:./l@sha256:${HEX}`,
    'oci-archive:/x/img.tar:latest',
    'oci-archive:img.tar',
    'docker-archive:a.tar',
    'docker-archive:a.tar:busybox',
    'docker-archive:a.tar:localhost:5000/x/y:v2',
    'docker-archive:a.tar:@3',
    'docker-archive:-',
    'dir:/some/where',
    'docker://busybox',
    'docker://quay.io/org/app:v',
    `docker://r.io/a:t@sha256:${HEX}`,
    'docker://127.0.0.1:5000/a/b:t',
  ]
  for (const s of inputs) {
    const r = parseReference(s)
    const f = formatReference(r)
    assert.deepEqual(parseReference(f), r, `${s} -> ${f}`)
    assert.equal(formatReference(parseReference(f)), f, `${f} is canonical`)
  }
  assert.equal(formatReference(parseReference('docker://busybox')), 'docker://docker.io/library/busybox:latest')
  // A value no string can name is refused instead of formatted into a different reference.
  assert.throws(
    () => formatReference({ transport: 'oci', dir: '/a:b', tag: 't' }),
    (e: unknown) => isLadingError(e, 'USAGE'),
  )
  assert.equal(formatReference({ transport: 'dir', dir: '/a:b' }), 'dir:/a:b')
})

test('reference: bad forms are USAGE errors naming the expected form', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /expected one of/],
    ['busybox', /unknown transport.*expected one of oci:DIR/],
    ['docker:busybox', /unknown transport "docker"/],
    ['ftp://x/y', /unknown transport/],
    ['oci:', /empty path.*oci:DIR\[:TAG\|@DIGEST\]/],
    ['oci:dir:', /empty tag/],
    ['oci:dir:bad tag', /invalid tag/],
    [`oci:dir:t@sha256:${HEX}`, /both a tag and a digest/],
    ['oci:dir@sha256:abc', /invalid digest|requires 64/],
    ['oci-archive:', /empty path.*oci-archive:FILE\[:TAG\]/],
    ['docker-archive:a.tar:@x', /invalid image index.*docker-archive:FILE/],
    ['docker-archive:a.tar:Upper', /lowercase/],
    [`docker-archive:a.tar:x@sha256:${HEX}`, /cannot carry a digest/],
    ['dir:', /empty path.*dir:DIR/],
    ['docker://', /empty repository.*docker:\/\/\[REGISTRY\/\]REPO/],
    ['docker://Busybox', /lowercase/],
    ['docker://a/b:bad:tag', /invalid/],
    ['docker://a..b/c', /invalid/],
    ['docker://a/b:', /invalid tag/],
  ]
  for (const [s, re] of cases) {
    assert.throws(
      () => parseReference(s),
      (e: unknown) => isLadingError(e, 'USAGE') && re.test((e as Error).message),
      s,
    )
  }
})
