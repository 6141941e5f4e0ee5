// What /healthz/redis says of Redis and the caches, probed at a bounded rate.
import { Cluster } from 'ioredis'
import type { Metrics } from '../metrics.js'
import type { GuardedRedis } from './guarded-redis.js'

export interface RedisHealthReport {
  status: 'healthy' | 'degraded' | 'unhealthy'
  timestamp: string
  redis: { connected: boolean, version: string | null, uptime: number | null, usedMemory: number | null, totalKeys: number | null }
  sessionCache: {
    enabled: boolean
    healthy: boolean
    metrics: { hits: number, misses: number, errors: number, invalidations: number, total: number, hitRate: number, ttl: number }
    pool: { size: number, available: number, pending: number }
  }
  circuit: { state: 'closed' | 'open' | 'half-open' }
  performance: { ping: number | null, set: number | null, get: number | null }
  /** This instance's memory cache, in front of Redis. */
  localCache: { enabled: boolean, leaseHeld: boolean, entries: number, bytes: number, hits: number, misses: number }
  errors: string[]
}

export interface LocalCacheState {
  readonly enabled: boolean
  leaseHeld(): boolean
  readonly size: number
  readonly bytes: number
}

export interface RedisHealth {
  report(): Promise<RedisHealthReport>
}

const SLOW_PING_MS = 100
// A flood of health checks costs Redis one probe per this many milliseconds.
const PROBE_CACHE_MS = 1000

interface Probe {
  at: number
  info: Map<string, string> | undefined
  ping: number | null
  set: number | null
  get: number | null
  errors: string[]
}

export function parseInfo (text: string): Map<string, string> {
  const map = new Map<string, string>()
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0) map.set(line.slice(0, i), line.slice(i + 1))
  }
  return map
}

const PROBE_TIMEOUT_MS = 1000

// The probe bypasses the breaker (it reports the truth even while the circuit
// is open) but never waits on a frozen Redis for longer than this.
async function measure<T> (fn: () => Promise<T>): Promise<number> {
  const start = performance.now()
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([fn(), new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('probe timed out'), { name: 'ProbeTimeout' })), PROBE_TIMEOUT_MS)
    })])
  } finally {
    clearTimeout(timer)
  }
  return Math.round((performance.now() - start) * 1000) / 1000
}

// The sum of a counter's series, or of those whose tier label is `tier`.
async function counterValue (counter: { get(): unknown }, tier?: string): Promise<number> {
  const { values } = await counter.get() as { values: Array<{ value: number, labels: Record<string, unknown> }> }
  let sum = 0
  for (const v of values) if (tier === undefined || v.labels.tier === tier) sum += v.value
  return sum
}

export function createRedisHealth (redis: GuardedRedis | undefined, prefix: string, ttlSeconds: number, metrics: Metrics, local: LocalCacheState): RedisHealth {
  let probe: Probe | undefined
  let probing: Promise<Probe> | undefined

  // Errors are described in our words: a driver's message may carry host:port.
  async function runProbe (): Promise<Probe> {
    const result: Probe = { at: Date.now(), info: undefined, ping: null, set: null, get: null, errors: [] }
    if (redis === undefined) return result
    const client = redis.client
    if (client.status !== 'ready') {
      result.errors.push(`redis not connected (${client.status})`)
      return result
    }
    const key = `${prefix}health:probe`
    try {
      result.ping = await measure(() => client.ping())
      result.set = await measure(() => client.set(key, '1', 'PX', 10_000))
      result.get = await measure(() => client.get(key))
      let info = ''
      let dbsize = 0
      await measure(async () => { info = await client.info() })
      // on a Cluster, every master holds its own share of the keys
      await measure(async () => {
        dbsize = client instanceof Cluster
          ? (await Promise.all(client.nodes('master').map(node => node.dbsize()))).reduce((a, b) => a + b, 0)
          : await client.dbsize()
      })
      result.info = parseInfo(info)
      result.info.set('dbsize', String(dbsize))
    } catch (err) {
      result.errors.push(`redis probe failed (${(err as { name?: string }).name ?? 'error'})`)
    }
    return result
  }

  async function currentProbe (): Promise<Probe> {
    if (probe !== undefined && Date.now() - probe.at < PROBE_CACHE_MS) return probe
    probing ??= runProbe().finally(() => { probing = undefined })
    probe = await probing
    return probe
  }

  return {
    async report () {
      const p = await currentProbe()
      const circuit = redis?.circuit ?? 'closed'
      const connected = redis !== undefined && redis.client.status === 'ready' && p.ping !== null
      const errors = [...p.errors]
      if (redis === undefined) errors.push('cache disabled: REDIS_URL is not set')
      if (circuit !== 'closed') errors.push(`circuit ${circuit}`)
      if (p.ping !== null && p.ping >= SLOW_PING_MS) errors.push(`ping ${p.ping} ms is over ${SLOW_PING_MS} ms`)
      const status = redis === undefined
        ? 'degraded'
        : !connected ? 'unhealthy' : (circuit !== 'closed' || (p.ping ?? 0) >= SLOW_PING_MS) ? 'degraded' : 'healthy'
      const [hits, misses, errorCount, invalidations, localHits, localMisses] = await Promise.all([
        counterValue(metrics.cacheHits), counterValue(metrics.cacheMisses),
        counterValue(metrics.cacheErrors), counterValue(metrics.cacheInvalidations),
        counterValue(metrics.cacheHits, 'local'),
        counterValue(metrics.localCacheMisses)
      ])
      const total = hits + misses
      const info = p.info
      const num = (name: string) => info?.has(name) === true ? Number(info.get(name)) : null
      return {
        status,
        timestamp: new Date().toISOString(),
        redis: {
          connected,
          version: info?.get('redis_version') ?? null,
          uptime: num('uptime_in_seconds'),
          usedMemory: num('used_memory'),
          totalKeys: num('dbsize')
        },
        sessionCache: {
          enabled: redis !== undefined,
          healthy: status === 'healthy',
          metrics: { hits, misses, errors: errorCount, invalidations, total, hitRate: total === 0 ? 0 : hits / total, ttl: ttlSeconds },
          pool: {
            size: redis === undefined ? 0 : 1,
            available: connected ? 1 : 0,
            pending: (redis?.client as unknown as { commandQueue?: { length: number } } | undefined)?.commandQueue?.length ?? 0
          }
        },
        circuit: { state: circuit },
        performance: { ping: p.ping, set: p.set, get: p.get },
        localCache: {
          enabled: local.enabled,
          leaseHeld: local.enabled && local.leaseHeld(),
          entries: local.size,
          bytes: local.bytes,
          hits: localHits,
          misses: localMisses
        },
        errors
      }
    }
  }
}
