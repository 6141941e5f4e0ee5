// The Redis client (single, Cluster or Sentinel) behind the circuit breaker.
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { Metrics } from '../metrics.js'
import { failureLog } from '../errors.js'
import { createRedisPolicy, type CircuitName } from './redis-policy.js'
import { startHeartbeat } from './heartbeat.js'

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

export interface GuardedRedis {
  readonly client: RedisClient
  readonly circuit: CircuitName
  /**
   * Called when the server(s) behind the connection are not the ones seen
   * before (a failover, a restart): acknowledged writes may have been lost.
   */
  onServerChange(listener: () => void): void
  run<T>(command: string, fn: () => Promise<T>): Promise<T>
  connect(): void
  close(): Promise<void>
}

const GAUGE: Record<CircuitName, number> = { closed: 0, 'half-open': 1, open: 2 }

export function createGuardedRedis (
  config: RedisTarget & Pick<Config, 'redisTimeoutMs' | 'redisConnectTimeoutMs' | 'breakerThreshold' | 'breakerWindowMs' | 'breakerHalfOpenAfterMs'>,
  metrics: Metrics,
  log: FastifyBaseLogger
): GuardedRedis {
  const client = createRedisClient(config, config.redisConnectTimeoutMs)
  const guard = createRedisPolicy(client, {
    timeoutMs: config.redisTimeoutMs,
    threshold: config.breakerThreshold,
    windowMs: config.breakerWindowMs,
    maxTrialWaitMs: config.breakerHalfOpenAfterMs
  })
  const policy = guard.policy

  const gauge = metrics.breakerState.labels('redis')
  const opens = metrics.breakerOpens.labels('redis')
  guard.onStateChange(name => {
    gauge.set(GAUGE[name])
    if (name === 'open') opens.inc()
    log.warn({ circuit: name }, 'redis circuit %s', name)
  })

  logConnectionState(client, log, 'redis connection')
  // A signal that needs no traffic: the alert on Redis being away reads it.
  const connected = metrics.redisConnected.labels('redis')
  connected.set(0)
  client.on('ready', () => connected.set(1))
  client.on('close', () => connected.set(0))
  // Connected is not answering: a frozen Redis keeps the connection up.
  const responding = metrics.redisResponding.labels('redis')
  let stopHeartbeat: (() => void) | undefined

  // Which servers we talk to, by run_id: on a Cluster, every master's.
  const serverChangeListeners: Array<() => void> = []
  let identity: string | undefined
  async function checkIdentity (): Promise<void> {
    const nodes = client instanceof Cluster ? client.nodes('master') : [client]
    const infos = await Promise.all(nodes.map(node => node.info('server')))
    const next = infos.map(info => /run_id:(\w+)/.exec(info)?.[1] ?? '?').sort().join(',')
    if (identity !== undefined && next !== identity) {
      log.warn('redis server changed (failover or restart); entries cached before are not trusted')
      for (const listener of serverChangeListeners) listener()
    }
    identity = next
  }
  const recheck = () => { checkIdentity().catch(() => {}) }
  client.on('ready', recheck)
  // A Cluster refreshes its slot map after a failover moved them. Asking the
  // nodes while it is still connecting would feed its reconnect loop: wait
  // for ready.
  if (client instanceof Cluster) client.on('refresh', () => { if (client.status === 'ready') recheck() })

  const commandHistogram = metrics.redisCommandDuration
  const errors = metrics.cacheErrors
  // label children looked up once per command name, not once per call
  const timers = new Map<string, { observe(v: number): void }>()

  return {
    client,
    get circuit () { return guard.circuit },
    async run<T>(command: string, fn: () => Promise<T>): Promise<T> {
      const start = performance.now()
      try {
        return await policy.execute(fn)
      } catch (err) {
        errors.inc()
        throw err
      } finally {
        let timer = timers.get(command)
        if (timer === undefined) timers.set(command, timer = commandHistogram.labels(command))
        timer.observe((performance.now() - start) / 1000)
      }
    },
    onServerChange (listener) {
      serverChangeListeners.push(listener)
    },
    connect () {
      // a failed first connect is not fatal: ioredis keeps retrying
      client.connect().catch(() => {})
      stopHeartbeat ??= startHeartbeat(client, responding, Math.max(1000, config.redisTimeoutMs))
    },
    async close () {
      stopHeartbeat?.()
      guard.close()
      try {
        await client.quit()
      } catch {
        client.disconnect()
      }
    }
  }
}
