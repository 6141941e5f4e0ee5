// The Redis client (single, Cluster or Sentinel) with its fail-fast options:
// the cache wraps it in the breaker (guarded-redis.ts), the limiter and the
// doctor use it as it is.
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import { failureLog } from '../errors.js'

// Fail fast while disconnected and never replay: a command that was abandoned
// (timed out, connection dropped) must not run later on a new connection.
// family 0 lets the resolver pick IPv4 or IPv6 (Railway's private network).
// No CLIENT SETINFO: it exists from Redis 7.2 on, and granting it would make
// the ACL line (src/redis/acl.ts) fail on 7.0.
function failFastRedisOptions (connectTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    disableClientInfo: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: true,
    family: 0,
    connectTimeout: connectTimeoutMs,
    // reconnect forever, backing off to 1 s: the cache is used again within
    // about a second of Redis coming back (a refused connect costs ~nothing)
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000)
  }
}

export type RedisClient = Redis | Cluster

export type RedisTarget = Pick<Config, 'redisUrl' | 'redisClusterNodes' | 'redisSentinels' | 'redisSentinelMaster' | 'redisUsername' | 'redisPassword' | 'redisSentinelPassword'>

export function redisConfigured (config: RedisTarget): boolean {
  return config.redisUrl !== undefined || config.redisClusterNodes.length > 0 || config.redisSentinels.length > 0
}

// One client for the three deployments. Reads go to masters only: a replica
// can still hold an entry that a revoke has deleted on the master.
export function createRedisClient (config: RedisTarget, connectTimeoutMs: number): RedisClient {
  const base = failFastRedisOptions(connectTimeoutMs)
  const auth = {
    ...(config.redisUsername !== undefined ? { username: config.redisUsername } : {}),
    ...(config.redisPassword !== undefined ? { password: config.redisPassword } : {})
  }
  if (config.redisClusterNodes.length > 0) {
    return new Cluster(config.redisClusterNodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      scaleReads: 'master',
      redisOptions: { ...base, ...auth },
      clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000),
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: connectTimeoutMs,
      dnsLookup: (address, callback) => { callback(null, address) }
    })
  }
  if (config.redisSentinels.length > 0) {
    return new Redis({
      ...base,
      ...auth,
      sentinels: config.redisSentinels,
      name: config.redisSentinelMaster!,
      role: 'master',
      // A demoted master answers READONLY: reconnect (ask the sentinels again),
      // without resending the command. (ioredis' failoverDetector is left off:
      // its sentinel clients outlive quit() and keep reconnecting.)
      reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
      sentinelRetryStrategy: (times: number) => Math.min(100 * times, 2000),
      ...(config.redisSentinelPassword !== undefined ? { sentinelPassword: config.redisSentinelPassword } : {})
    })
  }
  return new Redis(config.redisUrl!, base)
}

// ioredis' messages carry host:port; only the code is logged, and only when
// the connection's state changes, not once per retry.
export function logConnectionState (client: RedisClient, log: FastifyBaseLogger, what: string): void {
  const state = failureLog(code => log.warn({ code }, `${what} error`), () => log.info(`${what} ready`))
  client.on('error', (err: NodeJS.ErrnoException) => state.failed(err))
  client.on('ready', () => state.ok())
}
