// Reads the service's own counters from GET /metrics (Prometheus text).
export type Samples = Array<{ name: string, labels: string, value: number }>

export async function scrape (baseUrl: string): Promise<Samples> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) })
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`)
  const samples: Samples = []
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (match !== null) samples.push({ name: match[1]!, labels: match[2] ?? '', value: Number(match[3]) })
  }
  return samples
}

// Sum of a metric over the series whose labels contain every given pair.
export function total (samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  let sum = 0
  for (const s of samples) {
    if (s.name === name && wanted.every(w => s.labels.includes(w))) sum += s.value
  }
  return sum
}

export interface CacheCounters {
  validations: number
  findSession: number
  hits: number
  misses: number
}

export async function cacheCounters (baseUrl: string): Promise<CacheCounters> {
  const samples = await scrape(baseUrl)
  return {
    validations: total(samples, 'session_validations_total'),
    findSession: total(samples, 'db_query_duration_seconds_count', { query: 'find_session' }),
    hits: total(samples, 'session_cache_hits_total'),
    misses: total(samples, 'session_cache_misses_total')
  }
}

// One label's values of a metric, summed over the other labels.
export function byLabel (samples: Samples, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {}
  const pattern = new RegExp(`${label}="([^"]*)"`)
  for (const s of samples) {
    if (s.name !== name) continue
    const value = pattern.exec(s.labels)?.[1]
    if (value !== undefined) out[value] = (out[value] ?? 0) + s.value
  }
  return out
}

/** prom-client's event-loop delay since the previous scrape (it resets at each), ms */
export interface EventLoopDelay { meanMs: number, p50Ms: number, p99Ms: number, maxMs: number }

export function eventLoopDelay (samples: Samples): EventLoopDelay {
  const ms = (name: string) => total(samples, `nodejs_eventloop_lag_${name}_seconds`) * 1000
  return { meanMs: ms('mean'), p50Ms: ms('p50'), p99Ms: ms('p99'), maxMs: ms('max') }
}

/** A service's cache answers over a span, from two scrapes of its /metrics. */
export interface CacheAnswers {
  validations: number
  localHits: number
  redisHits: number
  misses: number
  /** validations that asked no cache (e.g. before the instance caught up): to Postgres too */
  bypasses: number
  /** cache answers / validations: a bypass costs Postgres like a miss, so it counts against */
  hitRatio: number
}

export function cacheAnswers (before: Samples | undefined, after: Samples): CacheAnswers {
  const delta = (name: string, labels: Record<string, string> = {}) => total(after, name, labels) - (before === undefined ? 0 : total(before, name, labels))
  const validations = delta('session_validations_total')
  const localHits = delta('session_cache_hits_total', { tier: 'local' })
  const redisHits = delta('session_cache_hits_total', { tier: 'redis' })
  const misses = delta('session_cache_misses_total')
  return {
    validations,
    localHits,
    redisHits,
    misses,
    bypasses: Math.max(0, validations - localHits - redisHits - misses),
    hitRatio: validations === 0 ? Number.NaN : (localHits + redisHits) / validations
  }
}

export function addAnswers (a: CacheAnswers, b: CacheAnswers): CacheAnswers {
  const sum = {
    validations: a.validations + b.validations,
    localHits: a.localHits + b.localHits,
    redisHits: a.redisHits + b.redisHits,
    misses: a.misses + b.misses,
    bypasses: a.bypasses + b.bypasses
  }
  return { ...sum, hitRatio: sum.validations === 0 ? Number.NaN : (sum.localHits + sum.redisHits) / sum.validations }
}

export const NO_ANSWERS: CacheAnswers = { validations: 0, localHits: 0, redisHits: 0, misses: 0, bypasses: 0, hitRatio: Number.NaN }
