import { createHash } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import rateLimit, { normalizeIP, type FastifyRateLimitStore } from '@fastify/rate-limit'
import { circuitBreaker, ConsecutiveBreaker, handleAll, timeout, TimeoutStrategy, wrap } from 'cockatiel'
import type { Config } from './config.js'
import { RateLimitedError } from './errors.js'
import type { Metrics } from './metrics.js'
import { createRedisClient, redisConfigured, type RedisClient, type RedisTarget } from './redis/guarded-redis.js'

// Two budgets per caller and per fixed window, counted in Redis so that every
// instance shares them:
//   <prefix>rl:req:<caller>    every request to a guarded route
//   <prefix>rl:fail:<caller>   validations answered 401 (token guessing)
// A caller is a digest of its x-api-key (never the key), or its address when
// keys are off. Every counter gets its expiry in the same script that creates
// it. While Redis cannot be asked the counts live in this instance's memory:
// the limiter must never turn a cache outage into an outage of the service.

export interface WindowCount {
  /** Hits in the current window, this one included. */
  current: number
  /** Milliseconds until the window ends. */
  ttl: number
}

const HIT = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {n, ttl}`

const PEEK = `
local n = redis.call('GET', KEYS[1])
if not n then return {0, 0} end
return {tonumber(n), redis.call('PTTL', KEYS[1])}`

interface ScriptedRedis {
  svRateHit(key: string, windowMs: number): Promise<[number, number]>
  svRatePeek(key: string): Promise<[number, number]>
}

const VALIDATE_URL = '/sessions/validate'
// A flood of distinct callers (addresses, with keys off) cannot grow memory past this.
const MEMORY_MAX_KEYS = 10_000
// Consecutive Redis failures after which the limiter stops asking for a while.
const BREAKER_FAILURES = 3

/** Fixed windows held in this process: the fallback while Redis is away. */
export class MemoryWindows {
  private readonly windows = new Map<string, { count: number, resetAt: number }>()

  constructor (private readonly maxKeys = MEMORY_MAX_KEYS) {}

  hit (key: string, windowMs: number): WindowCount {
    const now = Date.now()
    let w = this.windows.get(key)
    if (w === undefined || w.resetAt <= now) {
      if (w === undefined && this.windows.size >= this.maxKeys) this.evict(now)
      w = { count: 0, resetAt: now + windowMs }
      this.windows.set(key, w)
    }
    w.count++
    return { current: w.count, ttl: w.resetAt - now }
  }

  peek (key: string): WindowCount {
    const now = Date.now()
    const w = this.windows.get(key)
    if (w === undefined || w.resetAt <= now) return { current: 0, ttl: 0 }
    return { current: w.count, ttl: w.resetAt - now }
  }

  get size (): number { return this.windows.size }

  // Expired windows go first; if none has, the oldest one does.
  private evict (now: number): void {
    for (const [key, w] of this.windows) if (w.resetAt <= now) this.windows.delete(key)
    if (this.windows.size >= this.maxKeys) {
      const oldest = this.windows.keys().next()
      if (oldest.done !== true) this.windows.delete(oldest.value)
    }
  }
}

export interface LimiterBackend {
  /** Counts a hit. `countFallback`: this call decides the request, so a memory answer is counted. */
  hit(key: string, windowMs: number, countFallback: boolean): Promise<WindowCount>
  peek(key: string, countFallback: boolean): Promise<WindowCount>
  /** Resolves once Redis is connected, or after `ms`, whichever is first. */
  settle(ms: number): Promise<void>
  close(): Promise<void>
}

type BackendConfig = RedisTarget & Pick<Config, 'redisTimeoutMs' | 'breakerHalfOpenAfterMs' | 'sessionCachePrefix'>

export function createLimiterBackend (config: BackendConfig, metrics: Metrics, log: FastifyBaseLogger): LimiterBackend {
  const memory = new MemoryWindows()
  const prefix = `${config.sessionCachePrefix}rl:`
  if (!redisConfigured(config)) {
    return {
      async hit (key, windowMs) { return memory.hit(prefix + key, windowMs) },
      async peek (key) { return memory.peek(prefix + key) },
      async settle () {},
      async close () {}
    }
  }

  // Its own connection, so that limiter traffic never queues behind (or trips
  // the breaker of) the cache's, and the same fail-fast options: no offline
  // queue, no replay after a reconnect.
  const client: RedisClient = createRedisClient(config, Math.max(1000, config.redisTimeoutMs * 5))
  client.defineCommand('svRateHit', { numberOfKeys: 1, lua: HIT })
  client.defineCommand('svRatePeek', { numberOfKeys: 1, lua: PEEK })
  const scripted = client as unknown as ScriptedRedis

  // ioredis' messages carry host:port; only the code is logged, once per change.
  let lastCode: string | undefined
  client.on('error', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? err.name
    if (code !== lastCode) log.warn({ code }, 'rate limiter: redis connection error, counting in memory')
    lastCode = code
  })
  client.on('ready', () => {
    if (lastCode !== undefined) log.info('rate limiter: redis connection ready')
    lastCode = undefined
  })
  client.connect().catch(() => {})

  // A frozen Redis costs at most a few timeouts; then memory answers at once
  // until the breaker lets one call try again.
  const policy = wrap(
    circuitBreaker(handleAll, { halfOpenAfter: config.breakerHalfOpenAfterMs, breaker: new ConsecutiveBreaker(BREAKER_FAILURES) }),
    timeout(config.redisTimeoutMs, TimeoutStrategy.Aggressive)
  )
  const fallbacks = metrics.rateLimitFallbacks
  const durations = metrics.redisCommandDuration

  async function ask<T> (command: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (client.status !== 'ready') return undefined
    const start = performance.now()
    try {
      return await policy.execute(fn)
    } catch {
      return undefined
    } finally {
      durations.labels(command).observe((performance.now() - start) / 1000)
    }
  }

  return {
    async hit (key, windowMs, countFallback) {
      const k = prefix + key
      const answer = await ask('rate_limit', () => scripted.svRateHit(k, windowMs))
      if (answer !== undefined) return { current: Number(answer[0]), ttl: Number(answer[1]) }
      if (countFallback) fallbacks.inc()
      return memory.hit(k, windowMs)
    },
    async peek (key, countFallback) {
      const k = prefix + key
      const answer = await ask('rate_limit_peek', () => scripted.svRatePeek(k))
      if (answer !== undefined) return { current: Number(answer[0]), ttl: Math.max(0, Number(answer[1])) }
      if (countFallback) fallbacks.inc()
      return memory.peek(k)
    },
    async settle (ms) {
      if (client.status === 'ready') return
      let timer: NodeJS.Timeout | undefined
      let ready: (() => void) | undefined
      await new Promise<void>(resolve => {
        ready = resolve
        timer = setTimeout(resolve, ms)
        client.once('ready', resolve)
      })
      clearTimeout(timer)
      client.off('ready', ready!)
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

// The store @fastify/rate-limit drives: a namespace over the shared backend.
class BackendStore implements FastifyRateLimitStore {
  constructor (private readonly backend: LimiterBackend, private readonly namespace: string) {}

  incr (key: string, callback: (error: Error | null, result?: WindowCount) => void, timeWindow: number): void {
    this.backend.hit(this.namespace + key, timeWindow, true).then(r => callback(null, r), callback)
  }

  read (key: string, callback: (error: Error | null, result?: WindowCount) => void): void {
    this.backend.peek(this.namespace + key, false).then(r => callback(null, r), callback)
  }

  child (routeOptions: unknown): FastifyRateLimitStore {
    const route = (routeOptions as { routeInfo?: { method?: string, url?: string } }).routeInfo
    return new BackendStore(this.backend, `${this.namespace}${route?.method ?? ''}${route?.url ?? ''}-`)
  }
}

const digest = (value: string) => createHash('sha256').update(value).digest('hex')

// Runs after the API-key guard, so with keys on the header holds a valid key.
// 128 bits of its digest tell callers apart; the key itself is never stored.
function callerOf (keysOn: boolean): (request: FastifyRequest) => string {
  return request => {
    const key = request.headers['x-api-key']
    if (keysOn && typeof key === 'string') return `k:${digest(key).slice(0, 32)}`
    return `a:${normalizeIP(request.ip)}`
  }
}

function retryAfterSeconds (ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000))
}

export interface RateLimitOptions {
  config: Config
  metrics: Metrics
  log: FastifyBaseLogger
}

/**
 * Limits the routes of `scope` (register it after the API-key guard and before
 * the routes): a 403 costs no limiter call, health and metrics live elsewhere.
 */
export async function rateLimits (scope: FastifyInstance, { config, metrics, log }: RateLimitOptions): Promise<void> {
  const { rateLimitMax: max, rateLimitFailedMax: failedMax, rateLimitWindowMs: windowMs } = config
  if (max === 0 && failedMax === 0) return
  const backend = createLimiterBackend(config, metrics, log)
  const caller = callerOf(config.serviceApiKeys.length > 0)
  scope.addHook('onClose', async () => { await backend.close() })
  // The first requests after a boot are counted where every instance sees them.
  scope.addHook('onReady', async () => { await backend.settle(Math.max(1000, config.redisTimeoutMs * 5)) })

  if (max > 0) {
    const refused = metrics.rateLimited.labels('requests')
    await scope.register(rateLimit, {
      global: true,
      max,
      timeWindow: windowMs,
      keyGenerator: caller,
      store: class extends BackendStore { constructor () { super(backend, 'req:') } },
      // the store never fails (memory answers instead); if it did, serve
      skipOnError: true,
      errorResponseBuilder: (_request, context) => {
        refused.inc()
        return new RateLimitedError('requests', String(retryAfterSeconds(context.ttl)))
      }
    })
  }

  if (failedMax > 0) {
    const refused = metrics.rateLimited.labels('failed_validations')
    const failKey = (request: FastifyRequest) => `fail:${caller(request)}`
    // The failed count is read after the API-key guard, in flight while the
    // request budget is counted (the two round trips overlap), and judged
    // before the body is read: a caller over its failed budget gets 429 for every
    // validation until the window ends, which costs Postgres nothing. 429
    // tells it to retry, never that the session is gone.
    const peeks = new WeakMap<FastifyRequest, Promise<WindowCount>>()
    scope.addHook('onRequest', async (request) => {
      // peek never rejects (memory answers instead), so an unawaited one is safe
      if (request.routeOptions.url === VALIDATE_URL) peeks.set(request, backend.peek(failKey(request), max === 0))
    })
    scope.addHook('preParsing', async (request: FastifyRequest, reply: FastifyReply, payload) => {
      const peek = peeks.get(request)
      if (peek === undefined) return payload
      const { current, ttl } = await peek
      if (current >= failedMax) {
        const after = String(retryAfterSeconds(ttl))
        refused.inc()
        reply.header('retry-after', after)
        throw new RateLimitedError('failed validations', after)
      }
      return payload
    })
    // Counted before the 401 leaves, so a caller's next request sees it.
    scope.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode === 401 && request.routeOptions.url === VALIDATE_URL) {
        await backend.hit(failKey(request), windowMs, false)
      }
      return payload
    })
  }
}
