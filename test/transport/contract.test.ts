/**
 * The transport contract (test/transport/contract.ts) run by every transport: oci, oci-archive,
 * docker-archive, dir, and docker against a real registry (docker-registry from Debian).
 */
import { after, before } from 'node:test'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { registryMissing, startRegistry, type RunningRegistry } from '../helpers/registry.js'
import { tempDir, type AfterHook } from '../fixtures/temp.js'
import { transportContract, type TransportUnderTest } from './contract.js'

async function inTempDir(hook: AfterHook, make: (dir: string) => TransportUnderTest['ref']): Promise<TransportUnderTest> {
  const dir = tempDir(hook, { prefix: 'lading-transport-contract-' })
  return { ref: make(dir), root: dir }
}

transportContract('oci', (t) => inTempDir(t, (dir) => ({ transport: 'oci', dir: path.join(dir, 'layout'), tag: 'v1' })))
transportContract('oci-archive', (t) => inTempDir(t, (dir) => ({ transport: 'oci-archive', file: path.join(dir, 'image.tar'), tag: 'v1' })))
transportContract('docker-archive', (t) =>
  inTempDir(t, (dir) => ({ transport: 'docker-archive', file: path.join(dir, 'image.tar'), name: 'example.com/contract', tag: 'v1' })),
)
transportContract('dir', (t) => inTempDir(t, (dir) => ({ transport: 'dir', dir: path.join(dir, 'image') })))

const missing = registryMissing()
let registry: RunningRegistry | undefined
if (!missing) {
  before(async () => {
    registry = await startRegistry()
  })
  after(async () => {
    await registry?.stop()
  })
}
transportContract(
  'docker',
  async () => ({
    ref: { transport: 'docker', registry: registry!.host, repository: `contract/${randomBytes(4).toString('hex')}`, tag: 'v1' },
    root: registry!.storageDir,
    opts: { tlsVerify: false },
    async cleanup() {},
  }),
  { skip: missing ?? false },
)
