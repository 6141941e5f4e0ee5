import { createHash } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import rateLimit, { normalizeIP, type FastifyRateLimitStore } from '@fastify/rate-limit'
import { circuitBreaker, CircuitState, ConsecutiveBreaker, handleAll, timeout, TimeoutStrategy, wrap } from 'cockatiel'
import type { Config } from './config.js'
import { RateLimitedError } from './errors.js'
import type { Metrics } from './metrics.js'
import { createRedisClient, logConnectionState, redisConfigured, type RedisClient, type RedisTarget } from './redis/guarded-redis.js'

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

// Adds this instance's count (ARGV[1]) to the shared one and reads the total
// back; with 0 it only reads, and creates nothing. The expiry is set in the
// same script that creates the counter.
const SYNC = `
local n
if ARGV[1] == '0' then
  n = tonumber(redis.call('GET', KEYS[1]) or '0')
  if n == 0 then return {0, 0} end
else
  n = redis.call('INCRBY', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  ttl = tonumber(ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {n, ttl}`

interface ScriptedRedis {
  svRateSync(key: string, add: number, windowMs: number): Promise<[number, number]>
}

const VALIDATE_URL = '/sessions/validate'
// A flood of distinct callers (addresses, with keys off) cannot grow memory past this.
const MEMORY_MAX_KEYS = 10_000
// Consecutive Redis failures after which the limiter stops asking for a while.
const BREAKER_FAILURES = 3

export interface LimiterBackend {
  /** Counts a hit. `countFallback`: this call decides the request, so a memory answer is counted. */
  hit(key: string, windowMs: number, countFallback: boolean): WindowCount
  peek(key: string, windowMs: number, countFallback: boolean): WindowCount
  /** Resolves once Redis is connected, or after `ms`, whichever is first. */
  settle(ms: number): Promise<void>
  close(): Promise<void>
  /** Callers counted in this process (bounded). */
  readonly size: number
}

type BackendConfig = RedisTarget & Pick<Config, 'redisTimeoutMs' | 'breakerHalfOpenAfterMs' | 'sessionCachePrefix'>

// How often an instance adds its counts to the shared ones and reads the
// others' back. Counting each request in Redis would put a round trip (and a
// hot key) on every request; this way the limiter costs the hot path two Map
// lookups, and a caller is seen by every instance at most this much later.
export const SYNC_EVERY_MS = 50

interface Counter {
  /** The shared count at the last sync (this instance's synced hits included). */
  shared: number
  /** Hits not yet added to the shared count. */
  pending: number
  /** Hits being added right now. */
  sending: number
  resetAt: number
  windowMs: number
  syncedAt: number
  touchedAt: number
}

export function createLimiterBackend (config: BackendConfig, metrics: Metrics, log: FastifyBaseLogger): LimiterBackend {
  const prefix = `${config.sessionCachePrefix}rl:`
  const fallbacks = metrics.rateLimitFallbacks
  const counters = new Map<string, Counter>()
  const hasRedis = redisConfigured(config)

  function counter (key: string, windowMs: number): Counter {
    const now = Date.now()
    let c = counters.get(key)
    if (c === undefined || c.resetAt <= now) {
      if (c === undefined && counters.size >= MEMORY_MAX_KEYS) evict(now)
      c = { shared: 0, pending: 0, sending: 0, resetAt: now + windowMs, windowMs, syncedAt: 0, touchedAt: now }
      counters.set(key, c)
    }
    c.touchedAt = now
    return c
  }

  // Ended windows go first; if none has, the least recently used one does.
  function evict (now: number): void {
    for (const [key, c] of counters) if (c.resetAt <= now) counters.delete(key)
    if (counters.size < MEMORY_MAX_KEYS) return
    let oldest: [string, number] | undefined
    for (const [key, c] of counters) if (oldest === undefined || c.touchedAt < oldest[1]) oldest = [key, c.touchedAt]
    if (oldest !== undefined) counters.delete(oldest[0])
  }

  function answer (c: Counter): WindowCount {
    return { current: c.shared + c.sending + c.pending, ttl: Math.max(0, c.resetAt - Date.now()) }
  }

  if (!hasRedis) {
    return {
      hit (key, windowMs) { const c = counter(prefix + key, windowMs); c.pending++; return answer(c) },
      peek (key, windowMs) { return answer(counter(prefix + key, windowMs)) },
      async settle () {},
      async close () {},
      get size () { return counters.size }
    }
  }

  // Its own connection, so that limiter traffic never queues behind (or trips
  // the breaker of) the cache's, and the same fail-fast options: no offline
  // queue, no replay after a reconnect.
  const client: RedisClient = createRedisClient(config, Math.max(1000, config.redisTimeoutMs * 5))
  client.defineCommand('svRateSync', { numberOfKeys: 1, lua: SYNC })
  const scripted = client as unknown as ScriptedRedis

  logConnectionState(client, log, 'rate limiter: redis connection (counting in memory meanwhile)')
  client.connect().catch(() => {})

  // A frozen Redis costs at most a few timeouts; then memory answers at once
  // until the breaker lets one call try again.
  const breaker = circuitBreaker(handleAll, { halfOpenAfter: config.breakerHalfOpenAfterMs, breaker: new ConsecutiveBreaker(BREAKER_FAILURES) })
  breaker.onStateChange(state => { breakerClosed = state === CircuitState.Closed })
  const policy = wrap(breaker, timeout(config.redisTimeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false }))
  const durations = metrics.rateLimitSyncDuration
  const syncErrors = metrics.rateLimitSyncErrors
  // Whether the counts are being shared: connected, and the breaker closed
  // (three failed syncs in a row open it).
  let breakerClosed = true
  const shared = () => breakerClosed && client.status === 'ready'
  let timer: NodeJS.Timeout | undefined
  let syncing = false

  function schedule (): void {
    if (timer !== undefined || syncing) return
    timer = setTimeout(() => {
      timer = undefined
      sync().catch(() => {})
    }, SYNC_EVERY_MS)
    timer.unref()
  }

  async function syncOne (key: string, c: Counter): Promise<void> {
    const add = c.pending
    c.pending = 0
    c.sending += add
    const start = performance.now()
    try {
      const [count, ttl] = await policy.execute(() => scripted.svRateSync(key, add, c.windowMs))
      c.shared = Number(count)
      if (Number(ttl) > 0) c.resetAt = Date.now() + Number(ttl)
      c.syncedAt = Date.now()
    } catch (err) {
      // kept here, and added to the shared count once Redis answers again
      c.pending += add
      syncErrors.inc()
      throw err
    } finally {
      c.sending -= add
      durations.observe((performance.now() - start) / 1000)
    }
  }

  async function sync (): Promise<void> {
    syncing = true
    const now = Date.now()
    const work: Array<Promise<void>> = []
    let again = false
    for (const [key, c] of counters) {
      if (c.resetAt <= now) {
        if (now - c.touchedAt > c.windowMs) counters.delete(key)
        continue
      }
      // New hits to add; and while a caller is active (seen within the last
      // second), its counts are refreshed so the others' hits show here too.
      const active = now - c.touchedAt < 1000
      if (c.pending > 0 || (active && now - c.syncedAt >= SYNC_EVERY_MS)) work.push(syncOne(key, c))
      if (active) again = true
    }
    await Promise.allSettled(work)
    syncing = false
    if (again) schedule()
  }

  return {
    hit (key, windowMs, countFallback) {
      const c = counter(prefix + key, windowMs)
      c.pending++
      if (countFallback && !shared()) fallbacks.inc()
      schedule()
      return answer(c)
    },
    peek (key, windowMs, countFallback) {
      const c = counter(prefix + key, windowMs)
      if (countFallback && !shared()) fallbacks.inc()
      schedule()
      return answer(c)
    },
    async settle (ms) {
      if (client.status !== 'ready') {
        let timer: NodeJS.Timeout | undefined
        let ready: (() => void) | undefined
        await new Promise<void>(resolve => {
          ready = resolve
          timer = setTimeout(resolve, ms)
          client.once('ready', resolve)
        })
        clearTimeout(timer)
        client.off('ready', ready!)
      }
    },
    get size () { return counters.size },
    async close () {
      if (timer !== undefined) clearTimeout(timer)
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
    callback(null, this.backend.hit(this.namespace + key, timeWindow, true))
  }

  read (key: string, callback: (error: Error | null, result?: WindowCount) => void): void {
    callback(null, this.backend.peek(this.namespace + key, 60_000, false))
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
    // Judged after the API-key guard and before the body is read: a caller
    // over its failed budget gets 429 for every validation until the window
    // ends, which costs Postgres nothing. 429 tells it to retry, never that
    // the session is gone.
    scope.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.url !== VALIDATE_URL) return
      const { current, ttl } = backend.peek(failKey(request), windowMs, max === 0)
      if (current >= failedMax) {
        const after = String(retryAfterSeconds(ttl))
        refused.inc()
        reply.header('retry-after', after)
        throw new RateLimitedError('failed validations', after)
      }
    })
    // Counted before the 401 leaves, so a caller's next request sees it.
    scope.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode === 401 && request.routeOptions.url === VALIDATE_URL) {
        backend.hit(failKey(request), windowMs, false)
      }
      return payload
    })
  }
}
