/**
 * For a describe block of registry-client tests: a docker-registry, a fault proxy in front of it
 * (test/helpers/fault-proxy.ts) and a client that talks to the registry directly, started by the
 * suite's `before` and stopped by its `after`. Read the fields inside tests (they are set once
 * `before` has run).
 */
import { RegistryClient } from '../../src/transport/registry/client.js'
import type { RetryOptions } from '../../src/transport/registry/retry.js'
import { startFaultProxy, type FaultProxy } from './fault-proxy.js'
import { startRegistry, type RunningRegistry } from './registry.js'

export interface ProxiedRegistry {
  reg: RunningRegistry
  proxy: FaultProxy
  /** Talks to `reg` directly, not through the proxy. */
  client: RegistryClient
}

type Hook = (fn: () => Promise<void>) => void

export function proxiedRegistry(hooks: { before: Hook; after: Hook }, retry: RetryOptions): ProxiedRegistry {
  const env = {} as Partial<ProxiedRegistry>
  hooks.before(async () => {
    env.reg = await startRegistry()
    env.proxy = await startFaultProxy(env.reg.url)
    env.client = new RegistryClient({ registry: env.reg.host, tlsVerify: false, retry })
  })
  hooks.after(async () => {
    await env.client?.close()
    await env.proxy?.stop()
    await env.reg?.stop()
  })
  return env as ProxiedRegistry
}
