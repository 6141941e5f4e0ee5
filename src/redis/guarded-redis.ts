// The Redis client (single, Cluster or Sentinel) behind the circuit breaker.
import { Cluster } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { Metrics } from '../metrics.js'
import { createRedisClient, logConnectionState, type RedisClient, type RedisTarget } from './redis-client.js'
import { createRedisPolicy, type CircuitName } from './redis-policy.js'
import { startHeartbeat } from './heartbeat.js'

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
