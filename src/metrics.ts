// Every Prometheus metric the service exposes, in one registry per app.
import { setImmediate as nextTurn } from 'node:timers/promises'
import client from '@platformatic/prom-client'
import { hotCounter, hotHistogram } from './hot-metrics.js'

// Buckets that resolve sub-millisecond answers (a cache hit is ~0.1 ms of our
// own time) and still show the slow tail up to a couple of seconds.
const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

// One registry per app instance, so that building the app twice in one process
// (tests do) never collides on metric names.
export function createMetrics () {
  const registry = new client.Registry()
  const registers = [registry]
  let localCache: { size: number, bytes: number } | undefined
  const validations = hotCounter({
    name: 'session_validations_total',
    help: 'Session validations by result and by where the answer came from',
    labelNames: ['result', 'source'] as const,
    registers
  })
  const metrics = {
    registry,
    validations,
    validationDuration: hotHistogram({
      name: 'session_validation_duration_seconds',
      help: 'Time spent answering a validation, from parsed request to answer',
      buckets: LATENCY_BUCKETS,
      registers
    }),
    cacheHits: hotCounter({
      name: 'session_cache_hits_total',
      help: 'Validations answered from a cache, by tier (local: this instance\'s memory; redis)',
      labelNames: ['tier'] as const,
      registers
    }),
    cacheMisses: hotCounter({ name: 'session_cache_misses_total', help: 'Validations that asked a cache and then had to ask Postgres', registers }),
    localCacheMisses: hotCounter({ name: 'session_local_cache_misses_total', help: 'Validations that asked this instance\'s memory and did not find the session', registers }),
    // fastify-metrics' route histogram, same name, labels and buckets, recorded by routes-metrics.ts
    httpRequestDuration: hotHistogram({
      name: 'http_request_duration_seconds',
      help: 'request duration in seconds',
      labelNames: ['method', 'route', 'status_code'] as const,
      registers
    }),
    localCacheEvictions: new client.Counter({
      name: 'session_local_cache_evictions_total',
      help: 'Entries dropped from this instance\'s memory to stay within its bounds (evict) or at their TTL (expire)',
      labelNames: ['reason'] as const,
      registers
    }),
    localCacheEntries: new client.Gauge({
      name: 'session_local_cache_entries',
      help: 'Sessions held in this instance\'s memory',
      registers,
      collect () { this.set(localCache?.size ?? 0) }
    }),
    localCacheBytes: new client.Gauge({
      name: 'session_local_cache_bytes',
      help: 'Estimated heap bytes held by this instance\'s memory cache',
      registers,
      collect () { this.set(localCache?.bytes ?? 0) }
    }),
    leaseHeld: new client.Gauge({
      name: 'session_local_cache_lease_held',
      help: 'Whether this instance may answer from its own memory (1) or not (0)',
      registers
    }),
    leaseLosses: new client.Counter({
      name: 'session_local_cache_lease_losses_total',
      help: 'Times this instance lost its lease (memory emptied before it was held again)',
      registers
    }),
    invalidationsSent: new client.Counter({
      name: 'session_invalidation_barriers_sent_total',
      help: 'Revokes whose invalidation was fanned out to the other instances',
      registers
    }),
    invalidationAcks: new client.Counter({
      name: 'session_invalidation_acks_received_total',
      help: 'Acknowledgements of this instance\'s fan-outs received from other instances',
      registers
    }),
    fanOutOutcomes: new client.Counter({
      name: 'session_revoke_fanout_total',
      help: 'Revoke fan-outs by how they ended: every instance acknowledged, or the lease was waited out',
      labelNames: ['outcome'] as const,
      registers
    }),
    revokeWait: new client.Histogram({
      name: 'session_revoke_wait_seconds',
      help: 'Time from a revoke\'s commit until no instance could answer it from memory',
      buckets: LATENCY_BUCKETS,
      registers
    }),
    changeLogReplays: new client.Counter({
      name: 'session_change_log_replays_total',
      help: 'Catch-ups that replayed the change log into Redis instead of moving the epoch',
      registers
    }),
    changeLogReplayed: new client.Counter({
      name: 'session_change_log_replayed_entries_total',
      help: 'Change log entries applied by catch-ups',
      registers
    }),
    cacheWarmed: new client.Counter({
      name: 'session_cache_warmed_total',
      help: 'Sessions written to the shared cache by warm-ups after an epoch move',
      registers
    }),
    cacheWarmDuration: new client.Histogram({
      name: 'session_cache_warm_duration_seconds',
      help: 'How long a completed warm-up took',
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers
    }),
    cacheWarmRuns: new client.Counter({
      name: 'session_cache_warm_runs_total',
      help: 'Warm-ups by outcome: done; skipped (another instance claimed the epoch); interrupted (the epoch moved again, or Redis was not readable); failed',
      labelNames: ['result'] as const,
      registers
    }),
    epochMoves: new client.Counter({
      name: 'session_cache_epoch_moves_total',
      help: 'Cache epoch moves made by this instance, by cause',
      labelNames: ['cause'] as const,
      registers
    }),
    cacheErrors: new client.Counter({ name: 'session_cache_errors_total', help: 'Redis calls that failed, timed out or were refused by the open circuit', registers }),
    cacheInvalidations: new client.Counter({
      name: 'session_cache_invalidations_total',
      help: 'Cache entries invalidated, by reason (revoke, notify, epoch)',
      labelNames: ['reason'] as const,
      registers
    }),
    cacheStaleAnswers: new client.Counter({
      name: 'session_cache_stale_answers_total',
      help: 'Valid answers from a Redis entry past its cache TTL (but not its session\'s expiry), given because Postgres could not be reached',
      registers
    }),
    cacheFillsRejected: new client.Counter({
      name: 'session_cache_fills_rejected_total',
      help: 'Cache fills refused by Redis because the session was revoked meanwhile or the fill came too late',
      registers
    }),
    notifications: new client.Counter({
      name: 'session_notifications_received_total',
      help: 'Postgres notifications received on the invalidation channel, by kind',
      labelNames: ['kind'] as const,
      registers
    }),
    redisCommandDuration: new client.Histogram({
      name: 'redis_command_duration_seconds',
      help: 'The cache\'s Redis calls as seen by the service, by command (a batch of reads is one call)',
      labelNames: ['command'] as const,
      buckets: LATENCY_BUCKETS,
      registers
    }),
    dbQueryDuration: new client.Histogram({
      name: 'db_query_duration_seconds',
      help: 'Postgres queries as seen by the service, by query name',
      labelNames: ['query'] as const,
      buckets: LATENCY_BUCKETS,
      registers
    }),
    dbErrors: new client.Counter({
      name: 'db_query_errors_total',
      help: 'Postgres queries that failed, by query name',
      labelNames: ['query'] as const,
      registers
    }),
    breakerState: new client.Gauge({
      name: 'circuit_breaker_state',
      help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open',
      labelNames: ['dependency'] as const,
      registers
    }),
    redisConnected: new client.Gauge({
      name: 'session_cache_redis_connected',
      help: 'Whether the cache\'s Redis connection is up (1) or not (0); absent when the cache is off',
      labelNames: ['dependency'] as const,
      registers
    }),
    redisResponding: new client.Gauge({
      name: 'session_cache_redis_responding',
      help: 'Whether the cache\'s Redis answered this instance\'s last heartbeat PING in time (1) or not (0), connected or not; absent when the cache is off, and until the first beat',
      labelNames: ['dependency'] as const,
      registers
    }),
    breakerOpens: new client.Counter({
      name: 'circuit_breaker_open_total',
      help: 'Times the circuit breaker opened',
      labelNames: ['dependency'] as const,
      registers
    }),
    replicaLag: new client.Gauge({
      name: 'db_replica_lag_seconds',
      help: 'How far the read replica\'s replay is behind, as last measured',
      registers
    }),
    replicaConfirmations: new client.Counter({
      name: 'db_replica_confirmations_total',
      help: 'Replica answers (absent, expired, or refused by the cache) confirmed on the primary',
      registers
    }),
    activityWrites: new client.Counter({
      name: 'session_activity_writes_total',
      help: 'Sessions whose last_activity_at was written (in batches)',
      registers
    }),
    // The limiter's own Redis calls, apart from the cache's: the Redis alerts
    // judge the cache, and a ratio mixing both could never reach its threshold.
    rateLimitSyncDuration: new client.Histogram({
      name: 'rate_limit_sync_duration_seconds',
      help: 'Rate-limit counter syncs with Redis (one script call per active caller)',
      buckets: LATENCY_BUCKETS,
      registers
    }),
    rateLimitSyncErrors: new client.Counter({
      name: 'rate_limit_sync_errors_total',
      help: 'Rate-limit counter syncs that failed, timed out or met the limiter\'s open circuit',
      registers
    }),
    rateLimitFallbacks: new client.Counter({
      name: 'rate_limit_store_fallback_total',
      help: 'Limiter decisions taken from this instance\'s memory because the counts could not be shared through Redis',
      registers
    }),
    rateLimited: new client.Counter({
      name: 'rate_limited_total',
      help: 'Requests refused with 429, by budget (requests; failed_lookups_end_user and failed_lookups_caller: lookups that would have reached Postgres)',
      labelNames: ['budget'] as const,
      registers
    })
  }
  // Present from the first scrape, so alerts see zeros rather than absence.
  for (const tier of ['local', 'redis'] as const) metrics.cacheHits.labels(tier).inc(0)
  for (const reason of ['evict', 'expire'] as const) metrics.localCacheEvictions.labels(reason).inc(0)
  for (const outcome of ['acknowledged', 'lease_expired'] as const) metrics.fanOutOutcomes.labels(outcome).inc(0)
  for (const cause of ['watermark_missing', 'log_pruned', 'replay_too_large', 'redis_unreachable', 'redis_server_changed'] as const) metrics.epochMoves.labels(cause).inc(0)
  metrics.leaseHeld.set(0)
  for (const result of ['done', 'skipped', 'interrupted', 'failed'] as const) metrics.cacheWarmRuns.labels(result).inc(0)
  metrics.breakerState.labels('redis').set(0)
  metrics.breakerOpens.labels('redis').inc(0)
  for (const reason of ['revoke', 'notify', 'epoch'] as const) metrics.cacheInvalidations.labels(reason).inc(0)
  for (const budget of ['requests', 'failed_lookups_end_user', 'failed_lookups_caller'] as const) metrics.rateLimited.labels(budget).inc(0)
  return Object.assign(metrics, {
    /** The memory cache whose size the gauges report. */
    trackLocalCache (cache: { size: number, bytes: number }) { localCache = cache }
  })
}

export type Metrics = ReturnType<typeof createMetrics>

// prom-client's default metrics include three gauges with a counter's _total
// suffix, which \`promtool check metrics\` rejects. Each is the sum of its
// by-type sibling (nodejs_active_handles{type} and so on), so nothing is lost.
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']

export function dropMisnamedDefaults (registry: client.Registry): void {
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name)
}

// The longest a scrape runs before it lets requests through again.
const SCRAPE_SLICE_MS = 0.5

/**
 * The registry's text exposition, exactly as registry.metrics() writes it,
 * built a few metrics per turn of the event loop: the whole of it takes a
 * couple of milliseconds, which at once would hold up every request behind it.
 */
export async function exposition (registry: client.Registry): Promise<string> {
  const parts: string[] = []
  let sliceStart = performance.now()
  for (const metric of registry.getMetricsAsArray()) {
    parts.push(await registry.getSingleMetricAsString(metric.name))
    if (performance.now() - sliceStart > SCRAPE_SLICE_MS) {
      await nextTurn()
      sliceStart = performance.now()
    }
  }
  return `${parts.join('\n\n')}\n`
}

// Times an async call into a histogram child without allocating a closure per
// call on the caller's side beyond the promise itself.
export async function timed<T> (histogram: client.Histogram<string>, label: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now()
  try {
    return await fn()
  } finally {
    histogram.labels(label).observe((performance.now() - start) / 1000)
  }
}
