// The session machinery, built in one place: the Postgres and Redis clients,
// both caches, the store, coherence, the service and the warm-up. Whoever
// builds them here closes them here, in the order close() knows.
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { Metrics } from '../metrics.js'
import { createSql } from '../db/postgres.js'
import { createLimiter } from '../db/limiter.js'
import { createGuardedRedis, type GuardedRedis } from '../redis/guarded-redis.js'
import { redisConfigured } from '../redis/redis-client.js'
import { errorCode, ExtraFieldsError } from '../errors.js'
import { createSessionCache } from './session-cache.js'
import { createLocalCache, type LocalCache } from './local-cache.js'
import { createSessionStore, type SessionStore } from './session-store.js'
import { createActivityWriter } from './activity-writer.js'
import { createSessionService, idleRule, type SessionService } from './session-service.js'
import { answerRenderer } from './answer.js'
import { createCoherence, newInstanceId, type Coherence } from './coherence/index.js'
import { inProcessFeed, postgresFeed, type InProcessNotifications } from './coherence/notifications.js'
import { createReplicaReader } from './replica-reader.js'
import { ensureExtraFields } from './extra-fields.js'
import { startWarmUp } from './warm-up.js'

export interface SessionsOptions {
  config: Config
  /** The Postgres to use: DATABASE_URL, or the embedded one in demo mode. */
  databaseUrl: string
  metrics: Metrics
  log: FastifyBaseLogger
  /** Test seam: runs between a miss's Postgres read and its cache write. */
  beforeFill?: ((digest: string) => Promise<void>) | undefined
  /** The embedded demo database delivers its notifications in-process. */
  notifications?: InProcessNotifications | undefined
}

export interface Sessions {
  service: SessionService
  coherence: Coherence
  store: SessionStore
  redis: GuardedRedis | undefined
  local: LocalCache | undefined
  /**
   * The extra columns exist with their triggers: a missing one throws (the
   * start stops); with Postgres down it is checked again in the background.
   */
  checkExtraFields(): Promise<void>
  close(): Promise<void>
}

export function createSessions (o: SessionsOptions): Sessions {
  const { config, metrics, log } = o
  const fields = config.extraFields
  const sql = createSql(config, o.databaseUrl)
  const limiter = createLimiter(config.databasePoolMax, config.databaseQueueMax)
  const store = createSessionStore(sql, limiter, metrics, config.databaseQueryTimeoutMs, '', fields)

  let redis: GuardedRedis | undefined
  if (redisConfigured(config)) {
    redis = createGuardedRedis(config, metrics, log)
    redis.connect()
  } else {
    log.warn('REDIS_URL (or REDIS_CLUSTER_NODES, REDIS_SENTINELS) is not set: the shared cache is off; lookups go to this instance\'s memory, then Postgres')
  }
  const cache = redis === undefined ? undefined : createSessionCache(redis, config.sessionCachePrefix, config.sessionCacheTtlSeconds, config.sessionCacheStaleSeconds, fields.session.length + fields.user.length)
  const local = config.localCacheMaxEntries === 0
    ? undefined
    : createLocalCache({ maxEntries: config.localCacheMaxEntries, maxBytes: config.localCacheMaxBytes, ttlMs: config.localCacheTtlSeconds * 1000 }, metrics)
  if (local !== undefined) metrics.trackLocalCache(local)
  const sliding = config.sessionSlidingSeconds === 0 ? undefined : { seconds: config.sessionSlidingSeconds, maxSeconds: config.sessionAbsoluteMaxSeconds }
  const activity = createActivityWriter(store, config.activityResolutionSeconds, sliding, metrics, log)
  // A replica is only worth reading with a cache whose tombstones can veto it.
  const replica = config.databaseReadUrl !== undefined && cache !== undefined
    ? createReplicaReader(config.databaseReadUrl, config, metrics, log)
    : undefined
  if (config.databaseReadUrl !== undefined && cache === undefined) log.warn('DATABASE_READ_URL is ignored while the cache is off')
  const prober = createSql({ ...config, databasePoolMax: 1 }, o.databaseUrl, 'session-validator-coherence')
  const id = newInstanceId()
  const feed = o.notifications !== undefined
    ? inProcessFeed(o.notifications, async (channel, payload) => { await prober`SELECT pg_notify(${channel}, ${payload})` })
    : postgresFeed(o.databaseUrl, config, log, id)
  const coherence = createCoherence({ config, id, feed, prober, store, redis, cache, local, replica, metrics, log })
  const render = answerRenderer(fields)
  const service = createSessionService({ store, cache, local, coherence, activity, render, metrics, log, beforeFill: o.beforeFill, replica, idle: idleRule(config) })
  const warmUp = cache !== undefined && redis !== undefined && config.cacheWarmSessions > 0
    ? startWarmUp({ store, cache, redis, coherence, remember: service.remember, prefix: config.sessionCachePrefix, sessions: config.cacheWarmSessions, rate: config.cacheWarmRate, metrics, log, beforeFill: o.beforeFill })
    : undefined

  let extraRetry: NodeJS.Timeout | undefined
  return {
    service,
    coherence,
    store,
    redis,
    local,

    async checkExtraFields () {
      try {
        await ensureExtraFields(sql, fields)
      } catch (err) {
        if (err instanceof ExtraFieldsError) throw err
        log.warn({ code: errorCode(err) }, 'could not check the extra fields yet; retrying')
        const retry = extraRetry = setInterval(() => {
          ensureExtraFields(sql, fields).then(() => clearInterval(retry), (err: unknown) => {
            if (err instanceof ExtraFieldsError) {
              clearInterval(retry)
              log.error({ variable: err.variable }, err.message)
            }
          })
        }, 2000)
        retry.unref()
      }
    },

    async close () {
      clearInterval(extraRetry)
      warmUp?.close()
      // Side by side, each chain in its order, every wait bounded: with
      // Postgres or Redis away the whole close stays within a few seconds
      // (server.ts gives it 10).
      await Promise.all([
        coherence.close().then(() => prober.end({ timeout: 1 })),
        feed.close(),
        activity.close().then(() => sql.end({ timeout: 2 })),
        replica?.close(),
        redis?.close()
      ])
    }
  }
}
