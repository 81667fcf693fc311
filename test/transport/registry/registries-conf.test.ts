/**
 * registries.conf (src/transport/registry/registries-conf.ts): parsing, longest-prefix choice,
 * mirrors and moves for pulls only, blocked and insecure registries; then against two real
 * docker-registry instances through the CLI (CONTAINERS_REGISTRIES_CONF), and skopeo reading the
 * same file pulls the same image from the same mirror.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, promises as fsp, writeFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { isLadingError } from '../../../src/errors.js'
import type { Digest } from '../../../src/digest/digest.js'
import {
  directEndpoint,
  findRegistry,
  loadRegistriesConf,
  parseConfFile,
  parseRegistriesConf,
  pullEndpoints,
  type RegistriesConf,
} from '../../../src/transport/registries-conf.js'
import type { DockerReference } from '../../../src/transport/types.js'
import { lading, ladingOk } from '../../helpers/cli.js'
import { registryAvailable, startRegistry, type RunningRegistry } from '../../helpers/registry.js'
import { findTool } from '../../helpers/tools.js'
import { initImage } from '../../fixtures/image.js'
import { tempDir } from '../../fixtures/temp.js'

const ref = (name: string, extra: Partial<DockerReference> = {}): DockerReference => {
  const slash = name.indexOf('/')
  return { transport: 'docker', registry: name.slice(0, slash), repository: name.slice(slash + 1), ...extra }
}
const names = (conf: RegistriesConf, r: DockerReference): string[] =>
  pullEndpoints(conf, r).map((e) => `${e.mirror ? 'mirror ' : ''}${e.insecure ? 'insecure ' : ''}${e.ref.registry}/${e.ref.repository}`)
const DIGEST = `sha256:${'a'.repeat(64)}` as Digest

const CONF = `
unqualified-search-registries = ["example.com"]

[[registry]]
prefix = "example.com/foo"
location = "internal.example.net/bar"

[[registry.mirror]]
location = "mirror-0.local/mirror-for-foo"

[[registry.mirror]]
location = "mirror-1.local/mirrors/foo"
insecure = true
pull-from-mirror = "digest-only"

[[registry]]
location = "example.com"
insecure = true

[[registry]]
prefix = "*.blocked.test"
blocked = true
`

test('registries.conf: the longest prefix applies, on path-component boundaries and host wildcards', () => {
  const conf = { registries: parseRegistriesConf(CONF, 'test.conf'), files: ['test.conf'] }
  assert.equal(findRegistry(conf, ref('example.com/foo/app'))?.prefix, 'example.com/foo')
  assert.equal(findRegistry(conf, ref('example.com/foobar/app'))?.prefix, 'example.com', '"foo" is not a prefix of the component "foobar"')
  assert.equal(findRegistry(conf, ref('example.com:5000/foo/app')), undefined, 'another port is another registry')
  assert.equal(findRegistry(conf, ref('a.blocked.test/x'))?.prefix, '*.blocked.test')
  assert.equal(findRegistry(conf, ref('blocked.test/x')), undefined, 'a wildcard needs a subdomain')
})

test('registries.conf: a pull tries the mirrors that serve the reference, then the moved location; a push goes to the reference itself', () => {
  const conf = { registries: parseRegistriesConf(CONF, 'test.conf'), files: ['test.conf'] }
  assert.deepEqual(
    names(conf, ref('example.com/foo/image', { tag: 'latest' })),
    ['mirror mirror-0.local/mirror-for-foo/image', 'internal.example.net/bar/image'],
    'the digest-only mirror is skipped for a tag',
  )
  assert.deepEqual(names(conf, ref('example.com/foo/image', { digest: DIGEST })), [
    'mirror mirror-0.local/mirror-for-foo/image',
    'mirror insecure mirror-1.local/mirrors/foo/image',
    'internal.example.net/bar/image',
  ])
  assert.deepEqual(pullEndpoints(conf, ref('example.com/foo/image', { tag: 't' })).at(-1)!.ref.tag, 't', 'tag and digest travel with the move')
  assert.deepEqual(names(conf, ref('example.com/other')), ['insecure example.com/other'])
  assert.deepEqual(names(conf, ref('docker.io/library/alpine')), ['docker.io/library/alpine'], 'no entry: the reference as it is')
  const push = directEndpoint(conf, ref('example.com/foo/image'))
  assert.equal(`${push.ref.registry}/${push.ref.repository}`, 'example.com/foo/image', 'moves and mirrors are for pulls only (containers-registries.conf(5))')
  assert.equal(directEndpoint(conf, ref('example.com/x')).insecure, true)
})

test('registries.conf: a moved name is read by the one Docker grammar and must be normalised (as containers/image ParseNamed)', () => {
  const conf = (location: string): RegistriesConf => ({
    registries: parseRegistriesConf(`[[registry]]\nprefix = "src.test/app"\nlocation = "${location}"\n`, 't.conf'),
    files: ['t.conf'],
  })
  assert.deepEqual(names(conf('mirror.test:5000/ns/app'), ref('src.test/app')), ['mirror.test:5000/ns/app'])
  // A first component without '.', ':' or localhost would be a Docker Hub namespace: refused, not sent to Hub.
  assert.throws(
    () => pullEndpoints(conf('mirror/app'), ref('src.test/app')),
    (e) => isLadingError(e, 'INVALID_REFERENCE') && /not a normalised name.*docker\.io\/mirror\/app/.test((e as Error).message),
  )
  assert.throws(
    () => pullEndpoints(conf('m.test/App'), ref('src.test/app')),
    (e) => isLadingError(e, 'INVALID_REFERENCE') && /lowercase/.test((e as Error).message),
  )
})

test('registries.conf: a blocked registry is refused for pulls and pushes, naming the file', () => {
  const conf = { registries: parseRegistriesConf(CONF, 'test.conf'), files: ['test.conf'] }
  for (const f of [() => pullEndpoints(conf, ref('a.blocked.test/x')), () => directEndpoint(conf, ref('a.blocked.test/x'))]) {
    assert.throws(f, (e) => isLadingError(e, 'DENIED') && /blocked by registries\.conf \(test\.conf, prefix \*\.blocked\.test\)/.test((e as Error).message))
  }
})

test('registries.conf: mirror-by-digest-only and tag-only mirrors', () => {
  const conf = {
    registries: parseRegistriesConf(
      `
[[registry]]
location = "r.test"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m.test"
[[registry]]
location = "s.test"
[[registry.mirror]]
location = "t.test"
pull-from-mirror = "tag-only"
`,
      'x.conf',
    ),
    files: [],
  }
  assert.deepEqual(names(conf, ref('r.test/a', { tag: 'v' })), ['r.test/a'])
  assert.deepEqual(names(conf, ref('r.test/a', { digest: DIGEST })), ['mirror m.test/a', 'r.test/a'])
  assert.deepEqual(names(conf, ref('s.test/a', { tag: 'v' })), ['mirror t.test/a', 's.test/a'])
  assert.deepEqual(names(conf, ref('s.test/a', { digest: DIGEST })), ['s.test/a'])
})

test("registries.conf: the v1 format's insecure and block lists", () => {
  const entries = parseRegistriesConf(
    `
[registries.search]
registries = ["docker.io"]
[registries.insecure]
registries = ["old.test:5000"]
[registries.block]
registries = ["bad.test", "old.test:5000"]
`,
    'v1.conf',
  )
  const conf = { registries: entries, files: [] }
  assert.equal(findRegistry(conf, ref('old.test:5000/a'))?.insecure, true)
  assert.equal(findRegistry(conf, ref('old.test:5000/a'))?.blocked, true)
  assert.throws(
    () => directEndpoint(conf, ref('bad.test/a')),
    (e) => isLadingError(e, 'DENIED'),
  )
})

test('registries.conf: a bad file is one error naming it, never ignored', () => {
  const cases: Array<[string, RegExp]> = [
    ['[[registry]\nlocation = "x"', /bad\.conf: not valid TOML/],
    ['[[registry]]\nlocation = 5', /location must be a string/],
    ['[[registry]]\nlocation = "x.test"\ninsecure = "yes"', /insecure must be true or false/],
    ['[[registry]]\nlocation = "https://x.test"', /names a registry, not a URL/],
    ['[[registry]]\nprefix = "x.test/app:v1"\nlocation = "y.test/app"', /tag or digest are not supported/],
    ['[[registry]]\nprefix = "*.x.test"\nlocation = "y.test"', /wildcard prefix cannot have a location/],
    ['[[registry]]\nlocation = "x.test"\n[[registry.mirror]]\ninsecure = true', /mirror #1 has no location/],
    [
      '[[registry]]\nlocation = "x.test"\n[[registry.mirror]]\nlocation = "m.test"\npull-from-mirror = "sometimes"',
      /pull-from-mirror must be all, digest-only or tag-only/,
    ],
    ['[registries.block]\nregistries = ["a"]\n[[registry]]\nlocation = "x.test"', /mixes the v1/],
    ['[[registry]]\ninsecure = true', /neither prefix nor location/],
    ['[[registry]]\nprefix = "x.test/app"\nblocked = true', /location is unset and the prefix is not a wildcard/],
  ]
  for (const [text, re] of cases) {
    assert.throws(
      () => parseRegistriesConf(text, 'bad.conf'),
      (e) => {
        assert.ok(isLadingError(e, 'INVALID_DOCUMENT'), String(e))
        assert.match((e as Error).message, /^registries\.conf bad\.conf: /)
        assert.match((e as Error).message, re)
        assert.doesNotMatch((e as Error).message, /\n/)
        return true
      },
      text,
    )
  }
})

test('registries.conf: a file that says nothing of registries is not parsed; one that might is', () => {
  // Not parsed: what follows the aliases would be a TOML error if it were.
  for (const text of [
    '# [[registry]]\n# location = "x.test"\nunqualified-search-registries = ["docker.io"]\n',
    '[aliases]\n  "registry" = "docker.io/library/registry"\n  "registries" = "x.test/r"\n  broken = = 1\n',
    '[ aliases ]  # short names\n"registry" = "docker.io/library/registry"\n[[other.list]]\nregistry = 1\n',
  ])
    assert.deepEqual(parseRegistriesConf(text, 'quiet.conf'), [], text)

  // Parsed, so their errors show: a registry table or root key, or a line the scan cannot place.
  for (const [text, re] of [
    ['[aliases]\n"a" = "b"\n[[registry]]\nlocation = 5\n', /location must be a string/],
    ['[aliases]\n"a" = "b"\n[ "registries" . "block" ]\nregistries = "x"\n', /must be a list of strings/],
    ['registries.insecure.registries = 7\n', /must be a list of strings/],
    ['x = [\n  [1, 2],\n]\n"registry" = 5\n', /must be an array of tables/],
    ['s = """\n[aliases]\n"""\nregistry = 5\n', /must be an array of tables/],
  ] as Array<[string, RegExp]>) {
    assert.throws(
      () => parseRegistriesConf(text, 'loud.conf'),
      (e) => isLadingError(e, 'INVALID_DOCUMENT') && re.test((e as Error).message),
      text,
    )
  }
})
test('registries.conf: credential-helpers, from the last file that lists any', (t) => {
  // A file that sets only credential-helpers is read (not skipped as saying nothing).
  assert.deepEqual(parseConfFile('credential-helpers = ["vault", "containers-auth.json"]\n', 'h.conf'), {
    entries: [],
    credentialHelpers: ['vault', 'containers-auth.json'],
  })
  assert.deepEqual(parseConfFile('credential-helpers = []\n[[registry]]\nlocation = "a.test"\n', 'h.conf').credentialHelpers, [])
  for (const bad of ['credential-helpers = "vault"\n', 'credential-helpers = ["vault", 7]\n', 'credential-helpers = [""]\n']) {
    assert.throws(
      () => parseConfFile(bad, 'bad.conf'),
      (e) => isLadingError(e, 'INVALID_DOCUMENT') && /credential-helpers must be a list of helper names/.test((e as Error).message),
      bad,
    )
  }
  const dir = tempDir(t, { prefix: 'lading-regconf-ch-' })
  const sys = path.join(dir, 'etc')
  mkdirSync(path.join(sys, 'registries.conf.d'), { recursive: true })
  writeFileSync(path.join(sys, 'registries.conf'), 'credential-helpers = ["one"]\n')
  writeFileSync(path.join(sys, 'registries.conf.d', '10.conf'), 'credential-helpers = ["two", "containers-auth.json"]\n')
  writeFileSync(path.join(sys, 'registries.conf.d', '20.conf'), 'credential-helpers = []\n')
  const conf = loadRegistriesConf({ env: {}, home: path.join(dir, 'home'), systemDir: sys })
  assert.deepEqual(conf.credentialHelpers, ['two', 'containers-auth.json'], 'a later list replaces an earlier one; an empty one does not')
  assert.equal(loadRegistriesConf({ env: {}, home: path.join(dir, 'home'), systemDir: path.join(dir, 'none') }).credentialHelpers, undefined)
})

test('registries.conf files: $CONTAINERS_REGISTRIES_CONF alone; else the user file over the system one, then drop-ins (system, user), later ones replacing a prefix', async (t) => {
  const dir = tempDir(t, { prefix: 'lading-regconf-' })
  const sys = path.join(dir, 'etc')
  const home = path.join(dir, 'home')
  const userDir = path.join(home, '.config', 'containers')
  await fsp.mkdir(path.join(sys, 'registries.conf.d'), { recursive: true })
  await fsp.mkdir(path.join(userDir, 'registries.conf.d'), { recursive: true })
  const w = (p: string, t: string): Promise<void> => fsp.writeFile(p, t)
  await w(path.join(sys, 'registries.conf'), '[[registry]]\nlocation = "a.test"\ninsecure = true\n')
  await w(path.join(sys, 'registries.conf.d', '10-b.conf'), '[[registry]]\nlocation = "b.test"\ninsecure = true\n')
  await w(path.join(sys, 'registries.conf.d', '20-b.conf'), '[[registry]]\nlocation = "b.test"\nblocked = true\n')
  await w(path.join(sys, 'registries.conf.d', 'ignored.txt'), 'not toml [')
  await w(path.join(userDir, 'registries.conf.d', '05-c.conf'), '[[registry]]\nlocation = "c.test"\ninsecure = true\n')
  const load = (env: NodeJS.ProcessEnv): RegistriesConf => loadRegistriesConf({ env, home, systemDir: sys })

  let conf = load({})
  assert.deepEqual(
    conf.files.map((f) => path.relative(dir, f)),
    ['etc/registries.conf', 'etc/registries.conf.d/10-b.conf', 'etc/registries.conf.d/20-b.conf', 'home/.config/containers/registries.conf.d/05-c.conf'],
  )
  assert.deepEqual(
    conf.registries.map((r) => `${r.prefix}${r.insecure ? ' insecure' : ''}${r.blocked ? ' blocked' : ''}`),
    ['a.test insecure', 'b.test blocked', 'c.test insecure'],
  )

  await w(path.join(userDir, 'registries.conf'), '[[registry]]\nlocation = "u.test"\nblocked = true\n')
  conf = load({})
  assert.deepEqual(
    conf.registries.map((r) => r.prefix),
    ['u.test', 'b.test', 'c.test'],
    'the user file replaces the system file; drop-ins still apply',
  )

  const only = path.join(dir, 'only.conf')
  await w(only, '[[registry]]\nlocation = "o.test"\n')
  conf = load({ CONTAINERS_REGISTRIES_CONF: only })
  assert.deepEqual(conf.files, [only])
  assert.deepEqual(
    conf.registries.map((r) => r.prefix),
    ['o.test'],
  )

  conf = loadRegistriesConf({ env: {}, home: path.join(dir, 'nohome'), systemDir: path.join(dir, 'noetc') })
  assert.deepEqual(conf, { registries: [], files: [] }, 'no file: nothing applies')
})

const skip = registryAvailable() ? false : process.env.CI === 'true' ? false : 'docker-registry not installed'

describe('registries.conf with real registries', { skip }, () => {
  const tmp = tempDir({ after }, { prefix: 'lading-regconf-it-' })
  let primary: RunningRegistry
  let mirror: RunningRegistry
  let confFile: string
  let env: Record<string, string>
  before(async () => {
    ;[primary, mirror] = await Promise.all([startRegistry(), startRegistry()])
    await initImage(path.join(tmp, 'src'), { seed: 'mirror-one' }, 'v1')
    await initImage(path.join(tmp, 'src'), { seed: 'primary-two' }, 'v2')
    // v1 only on the mirror, v2 only on the primary (both plain HTTP on loopback).
    ladingOk(['copy', '-q', '--dest-tls-verify=false', `oci:${path.join(tmp, 'src')}:v1`, `docker://${mirror.host}/mirrors/app:v1`])
    ladingOk(['copy', '-q', '--dest-tls-verify=false', `oci:${path.join(tmp, 'src')}:v2`, `docker://${primary.host}/real/app:v2`])
    confFile = path.join(tmp, 'registries.conf')
    await fsp.writeFile(
      confFile,
      [
        '[[registry]]',
        'prefix = "example.test/app"',
        `location = "${primary.host}/real/app"`,
        'insecure = true',
        '[[registry.mirror]]',
        `location = "${mirror.host}/mirrors/app"`,
        'insecure = true',
        '[[registry]]',
        `prefix = "${primary.host}/blocked"`,
        `location = "${primary.host}/blocked"`,
        'blocked = true',
        '[[registry]]',
        `location = "${primary.host}"`,
        'insecure = true',
        '',
      ].join('\n'),
    )
    env = { CONTAINERS_REGISTRIES_CONF: confFile, HOME: tmp, REGISTRY_AUTH_FILE: '', DOCKER_CONFIG: path.join(tmp, 'docker') }
  })
  after(async () => {
    await Promise.all([primary?.stop(), mirror?.stop()])
  })

  test('a pull goes to the mirror first, and to the moved location when the mirror lacks the image', async () => {
    const out = path.join(tmp, 'pulled')
    const one = lading(['copy', '-q', 'docker://example.test/app:v1', `oci:${out}:v1`], { env })
    assert.equal(one.status, 0, one.stderr)
    const two = lading(['copy', '-q', 'docker://example.test/app:v2', `oci:${out}:v2`], { env })
    assert.equal(two.status, 0, two.stderr)
    const src = JSON.parse(await fsp.readFile(path.join(tmp, 'src', 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string; annotations?: Record<string, string> }>
    }
    const got = JSON.parse(await fsp.readFile(path.join(out, 'index.json'), 'utf8')) as typeof src
    const byTag = (i: typeof src, t: string): string | undefined => i.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === t)?.digest
    assert.equal(byTag(got, 'v1'), byTag(src, 'v1'))
    assert.equal(byTag(got, 'v2'), byTag(src, 'v2'))
  })

  test('an image on neither the mirror nor the registry fails in one line that names what was tried', () => {
    const r = lading(['copy', '-q', 'docker://example.test/app:v9', `oci:${path.join(tmp, 'none')}:v9`], { env })
    assert.equal(r.status, 1)
    assert.match(r.stderr, /^lading: .*real\/app.*mirrors tried first: .*mirrors\/app/)
    assert.equal(r.stderr.trim().split('\n').length, 1)
  })

  test('a push goes to the reference itself (not moved, never to a mirror), and insecure applies to it', async () => {
    const r = lading(['copy', '-q', `oci:${path.join(tmp, 'src')}:v1`, `docker://${primary.host}/pushed/app:v1`], { env })
    assert.equal(r.status, 0, r.stderr)
    const without = lading(['copy', '-q', `oci:${path.join(tmp, 'src')}:v1`, `docker://${primary.host}/pushed/app:v1`], {
      env: { ...env, CONTAINERS_REGISTRIES_CONF: path.join(tmp, 'empty.conf') },
    })
    assert.equal(without.status, 1, 'without insecure = true the plain-HTTP registry is refused')
    const tags = lading(['list-tags', `docker://${primary.host}/pushed/app`], { env })
    assert.equal(tags.status, 0, tags.stderr)
    assert.deepEqual(JSON.parse(tags.stdout).Tags, ['v1'])
  })

  test('a blocked registry is refused for copy, list-tags and delete, in one line', () => {
    for (const args of [
      ['copy', '-q', `oci:${path.join(tmp, 'src')}:v1`, `docker://${primary.host}/blocked/app:v1`],
      ['copy', '-q', `docker://${primary.host}/blocked/app:v1`, `oci:${path.join(tmp, 'b')}:v1`],
      ['list-tags', `docker://${primary.host}/blocked/app`],
      ['delete', `docker://${primary.host}/blocked/app:v1`],
    ]) {
      const r = lading(args, { env })
      assert.equal(r.status, 1, args.join(' '))
      assert.match(r.stderr, /^lading: .*blocked by registries\.conf \(.*registries\.conf, prefix 127\.0\.0\.1:\d+\/blocked\)\n$/, args.join(' '))
    }
  })

  test('skopeo reading the same registries.conf pulls the same image through the same mirror', (t) => {
    const skopeo = findTool('skopeo')
    if (!skopeo) {
      if (process.env.CI === 'true') assert.fail('skopeo is required under CI')
      t.skip('skopeo not installed')
      return
    }
    const ours = ladingOk(['inspect', '--raw', 'docker://example.test/app:v1'], { env }).stdout
    // Debian's skopeo 1.9 takes the file from its --registries-conf flag (newer ones also read the variable).
    const theirs = spawnSync(skopeo, ['--registries-conf', confFile, 'inspect', '--raw', 'docker://example.test/app:v1'], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    })
    assert.equal(theirs.status, 0, theirs.stderr)
    assert.equal(ours, theirs.stdout)
  })
})
