import { Redis, type RedisOptions } from 'ioredis'
import {
  circuitBreaker, CircuitState, handleAll, SamplingBreaker, timeout, TimeoutStrategy, wrap
} from 'cockatiel'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { Metrics } from '../metrics.js'

export type CircuitName = 'closed' | 'open' | 'half-open'

// Fail fast while disconnected and never replay: a command that was abandoned
// (timed out, connection dropped) must not run later on a new connection.
// family 0 lets the resolver pick IPv4 or IPv6 (Railway's private network).
export function failFastRedisOptions (connectTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: true,
    family: 0,
    connectTimeout: connectTimeoutMs,
    // reconnect forever, backing off to 2 s: the cache comes back on its own
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000)
  }
}

export interface GuardedRedis {
  readonly client: Redis
  readonly circuit: CircuitName
  run<T>(command: string, fn: () => Promise<T>): Promise<T>
  connect(): void
  close(): Promise<void>
}

const GAUGE: Record<CircuitName, number> = { closed: 0, 'half-open': 1, open: 2 }

function circuitName (state: CircuitState): CircuitName {
  if (state === CircuitState.Closed) return 'closed'
  if (state === CircuitState.HalfOpen) return 'half-open'
  return 'open'
}

export function createGuardedRedis (
  url: string,
  config: Pick<Config, 'redisTimeoutMs' | 'breakerThreshold' | 'breakerWindowMs' | 'breakerHalfOpenAfterMs'>,
  metrics: Metrics,
  log: FastifyBaseLogger
): GuardedRedis {
  const client = new Redis(url, failFastRedisOptions(Math.max(1000, config.redisTimeoutMs * 5)))
  // The breaker must trip under light traffic too: five calls in the window
  // are enough for it to judge (cockatiel's default needs ~10 per second).
  const breaker = circuitBreaker(handleAll, {
    halfOpenAfter: config.breakerHalfOpenAfterMs,
    breaker: new SamplingBreaker({
      threshold: config.breakerThreshold,
      duration: config.breakerWindowMs,
      minimumRps: 5000 / config.breakerWindowMs
    })
  })
  const policy = wrap(breaker, timeout(config.redisTimeoutMs, TimeoutStrategy.Aggressive))

  const gauge = metrics.breakerState.labels('redis')
  const opens = metrics.breakerOpens.labels('redis')
  breaker.onStateChange(state => {
    const name = circuitName(state)
    gauge.set(GAUGE[name])
    if (name === 'open') opens.inc()
    log.warn({ circuit: name }, 'redis circuit %s', name)
  })

  // ioredis' messages carry host:port; only the code is logged, and only when
  // the connection's state changes, not once per retry.
  let lastCode: string | undefined
  client.on('error', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? err.name
    if (code !== lastCode) log.warn({ code }, 'redis connection error')
    lastCode = code
  })
  client.on('ready', () => {
    if (lastCode !== undefined) log.info('redis connection ready')
    lastCode = undefined
  })

  const commandHistogram = metrics.redisCommandDuration
  const errors = metrics.cacheErrors

  return {
    client,
    get circuit () { return circuitName(breaker.state) },
    async run<T>(command: string, fn: () => Promise<T>): Promise<T> {
      const start = performance.now()
      try {
        return await policy.execute(fn)
      } catch (err) {
        errors.inc()
        throw err
      } finally {
        commandHistogram.labels(command).observe((performance.now() - start) / 1000)
      }
    },
    connect () {
      // a failed first connect is not fatal: ioredis keeps retrying
      client.connect().catch(() => {})
    },
    async close () {
      try {
        await client.quit()
      } catch {
        client.disconnect()
      }
    }
  }
}
