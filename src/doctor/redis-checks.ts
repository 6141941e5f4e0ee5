// The cache as the service will meet it. Only keys under the service's prefix
// are touched (<prefix>doctor:{<random>}, with TTLs), and removed at the end.
import { randomBytes } from 'node:crypto'
import type { Config } from '../config.js'
import { redisConfigured } from '../redis/redis-client.js'
import { aclCheck } from './redis-acl-check.js'
import { connectRedis } from './redis-connect.js'
import { latencyChecks } from './redis-latency.js'
import { serverChecks } from './redis-server-checks.js'
import { pass, type Check } from './report.js'

export async function redisChecks (config: Config, p99Ms?: number): Promise<Check[]> {
  if (!redisConfigured(config)) {
    return [pass('redis', 'cache off (REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS are unset): a supported mode, every lookup goes to Postgres')]
  }
  const connected = await connectRedis(config)
  if (!('client' in connected)) return connected.checks
  const { client, servers } = connected
  const timeoutMs = config.redisConnectTimeoutMs
  const tag = randomBytes(6).toString('hex')
  const probeKey = `${config.sessionCachePrefix}doctor:{${tag}}`
  const entryKey = `${probeKey}:entry`
  try {
    return [
      ...connected.checks,
      ...await serverChecks(servers, timeoutMs),
      await aclCheck(config, servers, probeKey),
      ...await latencyChecks(client, entryKey, { waitMs: timeoutMs, callTimeoutMs: config.redisTimeoutMs, ...(p99Ms === undefined ? {} : { p99Ms }) })
    ]
  } finally {
    // both expire on their own (30 s, 10 s) should this DEL be refused
    await client.del(probeKey, entryKey).catch(() => {})
    client.disconnect()
  }
}
