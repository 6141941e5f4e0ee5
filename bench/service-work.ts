import { byLabel, eventLoopDelay, scrape, total, type EventLoopDelay, type Samples } from './scrape.ts'

// What the service did per validation during a run, from its own metrics:
// the calls behind each answer, to tell where its time can go.
export interface ServiceWork {
  validations: number
  /** cache hits over cache lookups (NaN with the cache off) */
  hitRatio: number
  /** answers from the instance's own memory (x-session-cache-tier: local) over validations */
  localShare: number
  /** times the instance lost its lease (and emptied its memory) during the run */
  leaseLosses: number
  redisCommandsPerValidation: Record<string, number>
  postgresQueriesPerValidation: Record<string, number>
  /** Postgres time as the service saw it, ms per validation, by query */
  postgresMsPerValidation: Record<string, number>
  activityRowsPerValidation: number
  /** garbage collection, ms per validation */
  gcMsPerValidation: number
  /** prom-client's event-loop delay since the scrape before the run (it samples every 10 ms) */
  eventLoop: EventLoopDelay
}

function perValidation (after: Record<string, number>, before: Record<string, number>, n: number, scale = 1): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [key, value] of Object.entries(after)) {
    const delta = value - (before[key] ?? 0)
    if (delta > 0) out[key] = (delta * scale) / n
  }
  return out
}

export function workBetween (before: Samples, after: Samples): ServiceWork {
  const n = Math.max(1, total(after, 'session_validations_total') - total(before, 'session_validations_total'))
  const of = (s: Samples, name: string, label: string) => byLabel(s, name, label)
  const delta = (name: string) => total(after, name) - total(before, name)
  const hits = delta('session_cache_hits_total')
  const lookups = hits + delta('session_cache_misses_total')
  const tier = { tier: 'local' }
  const localHits = total(after, 'session_cache_hits_total', tier) - total(before, 'session_cache_hits_total', tier)
  return {
    validations: n,
    hitRatio: lookups === 0 ? Number.NaN : hits / lookups,
    localShare: localHits / n,
    leaseLosses: delta('session_local_cache_lease_losses_total'),
    redisCommandsPerValidation: perValidation(of(after, 'redis_command_duration_seconds_count', 'command'), of(before, 'redis_command_duration_seconds_count', 'command'), n),
    postgresQueriesPerValidation: perValidation(of(after, 'db_query_duration_seconds_count', 'query'), of(before, 'db_query_duration_seconds_count', 'query'), n),
    postgresMsPerValidation: perValidation(of(after, 'db_query_duration_seconds_sum', 'query'), of(before, 'db_query_duration_seconds_sum', 'query'), n, 1000),
    activityRowsPerValidation: (total(after, 'session_activity_writes_total') - total(before, 'session_activity_writes_total')) / n,
    gcMsPerValidation: ((total(after, 'nodejs_gc_duration_seconds_sum') - total(before, 'nodejs_gc_duration_seconds_sum')) * 1000) / n,
    // the delay histogram restarts at every scrape, so this covers the run only
    eventLoop: eventLoopDelay(after)
  }
}

export { scrape }
