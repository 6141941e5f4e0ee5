// Counts per key in fixed windows aligned to the clock, shared by every
// instance through Redis in the background, and kept in memory meanwhile.
import { setImmediate as nextTurn } from 'node:timers/promises'
import { LRUCache } from 'lru-cache'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { Metrics } from '../metrics.js'
import { createRedisClient, logConnectionState, redisConfigured, type RedisClient, type RedisTarget } from '../redis/redis-client.js'
import { createRedisPolicy, type RedisPolicy } from '../redis/redis-policy.js'

export interface SharedCounter {
  /** Counts one for `key` in the current window; returns the window's count so far. */
  add(key: string): number
  /** The current window's count for `key` so far. */
  peek(key: string): number
  /** Milliseconds until the current window ends (every key's: windows are aligned). */
  resetInMs(): number
  /** Whether counts are shared right now (false: this instance's memory alone decides). */
  readonly shared: boolean
  /** Resolves once Redis is connected, or after `ms`, whichever is first. */
  settle(ms: number): Promise<void>
  close(): Promise<void>
}

// How often an instance adds its counts to the shared ones and reads the
// others' back. Counting each request in Redis would put a round trip (and a
// hot key) on every request; this way a count costs a map lookup, and an
// instance sees another's counts at most this much later.
export const SYNC_EVERY_MS = 50
// Keys synced per round: a flood of distinct keys costs Redis a bounded rate.
const SYNC_BATCH = 500
const SYNC_SLICE = 100
// A key counted or read within this long is kept fresh from Redis, so that
// the others' counts show here at most SYNC_EVERY_MS late.
const ACTIVE_MS = 1000
// Keys counted in memory: a flood of distinct keys cannot grow it past this.
const MEMORY_MAX_KEYS = 100_000

// Window `w` of a key is its own Redis key, created with its expiry in the
// same script. Counts kept in memory while Redis was away are added to the
// window they were counted in, or dropped with it: never to a later one.
const SYNC = `
if ARGV[1] == '0' then return tonumber(redis.call('GET', KEYS[1]) or '0') end
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n`

interface Count {
  window: number
  /** The shared count at the last sync, this instance's synced hits included. */
  shared: number
  /** Hits not yet added to the shared count. */
  pending: number
  /** Hits being added right now. */
  sending: number
  touchedAt: number
  syncedAt: number
}

export type CounterConfig = RedisTarget & Pick<Config, 'redisTimeoutMs' | 'redisConnectTimeoutMs' | 'breakerThreshold' | 'breakerWindowMs' | 'breakerHalfOpenAfterMs' | 'sessionCachePrefix' | 'rateLimitWindowMs'>

export function createSharedCounter (config: CounterConfig, metrics: Metrics, log: FastifyBaseLogger): SharedCounter {
  const windowMs = config.rateLimitWindowMs
  const prefix = `${config.sessionCachePrefix}rl:`
  const counts = new LRUCache<string, Count>({ max: MEMORY_MAX_KEYS })
  // keys to look at in the next rounds: counted or read lately, or holding hits
  const active = new Set<string>()
  const windowNow = () => Math.floor(Date.now() / windowMs)

  function count (key: string): Count {
    const window = windowNow()
    let c = counts.get(key)
    if (c === undefined || c.window !== window) {
      // a new window starts from zero; what an ended one still held is dropped
      c = { window, shared: 0, pending: 0, sending: 0, touchedAt: 0, syncedAt: 0 }
      counts.set(key, c)
    }
    c.touchedAt = Date.now()
    if (client !== undefined) {
      active.add(key)
      schedule()
    }
    return c
  }
  const total = (c: Count) => c.shared + c.sending + c.pending

  let client: RedisClient | undefined
  let guard: RedisPolicy | undefined
  let timer: NodeJS.Timeout | undefined
  let syncing = false
  if (redisConfigured(config)) {
    // Its own connection, so that limiter traffic never queues behind (or
    // trips the breaker of) the cache's; the same fail-fast options and the
    // same policy: no offline queue, no replay, a circuit that probes.
    client = createRedisClient(config, config.redisConnectTimeoutMs)
    client.defineCommand('svCount', { numberOfKeys: 1, lua: SYNC })
    guard = createRedisPolicy(client, {
      timeoutMs: config.redisTimeoutMs,
      threshold: config.breakerThreshold,
      windowMs: config.breakerWindowMs,
      maxTrialWaitMs: config.breakerHalfOpenAfterMs
    })
    logConnectionState(client, log, 'rate limiter: redis connection (counting in memory meanwhile)')
    client.connect().catch(() => {})
  }
  const durations = metrics.rateLimitSyncDuration
  const syncErrors = metrics.rateLimitSyncErrors
  const shared = () => client?.status === 'ready' && guard?.circuit === 'closed'

  async function syncOne (key: string, c: Count): Promise<void> {
    const add = c.pending
    c.pending = 0
    c.sending += add
    const start = performance.now()
    try {
      const n = await guard!.policy.execute(() => client!.svCount(`${prefix}${key}:${c.window}`, add, windowMs * 2))
      // one sync per key at a time: Redis' total already holds what was sent
      c.shared = Math.max(c.shared, Number(n))
      c.syncedAt = Date.now()
    } catch {
      syncErrors.inc()
      // kept, and added to its own window once Redis answers (if still open)
      c.pending += add
    } finally {
      c.sending -= add
      durations.observe((performance.now() - start) / 1000)
    }
  }

  // New hits are added to Redis and the total read back; a key that only has
  // counts from before is read back while it is in use. A key nobody counted
  // here is not asked about: the first hit here learns the total.
  async function sync (): Promise<void> {
    syncing = true
    const now = Date.now()
    const window = windowNow()
    const work: Array<Promise<void>> = []
    for (const key of active) {
      const c = counts.peek(key)
      if (c === undefined || c.window !== window) {
        active.delete(key)
        continue
      }
      if (now - c.touchedAt > ACTIVE_MS && c.pending === 0) {
        active.delete(key)
        continue
      }
      if (c.pending > 0 || (total(c) > 0 && now - c.syncedAt >= SYNC_EVERY_MS)) {
        work.push(syncOne(key, c))
        // a slice of calls per turn of the event loop: requests go on in between
        if (work.length % SYNC_SLICE === 0) await nextTurn()
      }
      if (work.length === SYNC_BATCH) break
    }
    await Promise.allSettled(work)
    syncing = false
    if (active.size > 0) schedule()
  }

  function schedule (): void {
    if (client === undefined || timer !== undefined || syncing) return
    timer = setTimeout(() => {
      timer = undefined
      // while the circuit is open, nothing is sent: memory decides meanwhile
      if (guard!.circuit === 'open') schedule()
      else sync().catch(() => {})
    }, SYNC_EVERY_MS)
    timer.unref()
  }

  return {
    add (key) {
      const c = count(key)
      c.pending++
      return total(c)
    },
    peek (key) {
      const c = counts.get(key)
      // nothing counted here yet: nothing to keep fresh either
      if (c === undefined || c.window !== windowNow()) return 0
      return total(count(key))
    },
    resetInMs: () => windowMs - (Date.now() % windowMs),
    get shared () { return shared() },
    async settle (ms) {
      const c = client
      if (c === undefined || c.status === 'ready') return
      await new Promise<void>(resolve => {
        const done = () => {
          clearTimeout(timeout)
          c.off('ready', done)
          resolve()
        }
        const timeout = setTimeout(done, ms)
        c.once('ready', done)
      })
    },
    async close () {
      if (timer !== undefined) clearTimeout(timer)
      guard?.close()
      if (client === undefined) return
      try {
        await client.quit()
      } catch {
        client.disconnect()
      }
    }
  }
}
