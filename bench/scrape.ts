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
