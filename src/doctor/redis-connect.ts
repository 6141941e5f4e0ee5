// Connects the way the service does (createRedisClient: single, Cluster or
// Sentinel, the same options), and tells "cannot reach" from "refused us".
import { Cluster, type Redis } from 'ioredis'
import type { Config } from '../config.js'
import { createRedisClient, type RedisClient } from '../redis/redis-client.js'
import { fail, pass, type Check } from './report.js'
import { errorCode } from '../errors.js'
import { within } from './within.js'

interface Connected {
  client: RedisClient
  /** The servers that hold keys: every master of a Cluster, else the one server. */
  servers: Redis[]
  checks: Check[]
}

// Redis answered, and said no: the server is there, the credentials are not right.
const AUTH_CODES = new Set(['WRONGPASS', 'NOAUTH', 'NOPERM', 'ERR'])

function describe (config: Config, client: RedisClient): string {
  if (client instanceof Cluster) return `Cluster, ${client.nodes('master').length} masters`
  if (config.redisSentinels.length > 0) return `master "${config.redisSentinelMaster}" found through ${config.redisSentinels.length} sentinels`
  return 'single server'
}

function user (config: Config): string {
  const fromUrl = config.redisUrl === undefined ? '' : decodeURIComponent(new URL(config.redisUrl).username)
  return config.redisUsername ?? (fromUrl === '' ? 'default' : fromUrl)
}

// ioredis' own messages can carry host:port: only recognised, never shown.
function unreachable (err: unknown): string {
  const message = (err as Error | undefined)?.message ?? ''
  if (message.startsWith('All sentinels are unreachable')) return 'no sentinel of REDIS_SENTINELS answered with a master by the name REDIS_SENTINEL_MASTER'
  if (message.startsWith('None of startup nodes is available') || (err as Error | undefined)?.name === 'ClusterAllFailedError') return 'none of REDIS_CLUSTER_NODES answers as a Cluster node'
  return 'cannot connect'
}

export async function connectRedis (config: Config): Promise<Connected | { checks: Check[] }> {
  const connectMs = config.redisConnectTimeoutMs
  const client = createRedisClient(config, connectMs)
  let firstError: unknown
  client.on('error', (err: unknown) => { firstError ??= err })
  try {
    await within(connectMs * 3, client.connect())
  } catch (err) {
    client.disconnect()
    const code = errorCode(firstError ?? err)
    if (AUTH_CODES.has(code)) {
      return { checks: [pass('redis reachable', 'the server answers'), fail('redis auth', `refused for user "${user(config)}" (${code}): check the password in REDIS_URL (or REDIS_PASSWORD)`)] }
    }
    return { checks: [fail('redis reachable', `${unreachable(firstError ?? err)} (${code})`)] }
  }
  const servers = client instanceof Cluster ? client.nodes('master') : [client as Redis]
  const password = config.redisPassword !== undefined || (config.redisUrl !== undefined && new URL(config.redisUrl).password !== '')
  return {
    client,
    servers,
    checks: [
      pass('redis reachable', `connected (${describe(config, client)})`),
      pass('redis auth', password ? `accepted for user "${user(config)}"` : 'no password configured, and this Redis asks for none')
    ]
  }
}
