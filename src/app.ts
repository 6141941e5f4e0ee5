// The service as a Fastify plugin: config, dependencies, routes, one error handler.
import { STATUS_CODES } from 'node:http'
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import '@fastify/swagger'
import fp from 'fastify-plugin'
import fastifyMetricsModule from 'fastify-metrics'
import promClient from '@platformatic/prom-client'
import type { Config } from './config.js'
import { createSql } from './db/postgres.js'
import { createLimiter } from './db/limiter.js'
import { createMetrics, dropMisnamedDefaults } from './metrics.js'
import { routeMetrics } from './route-metrics.js'
import { createGuardedRedis, type GuardedRedis } from './redis/guarded-redis.js'
import { redisConfigured } from './redis/redis-client.js'
import { createRedisHealth } from './redis/redis-health.js'
import { createSessionCache } from './sessions/session-cache.js'
import { createLocalCache } from './sessions/local-cache.js'
import { createSessionStore } from './sessions/session-store.js'
import { createActivityWriter } from './sessions/activity-writer.js'
import { createSessionService, idleRule, type SessionService } from './sessions/session-service.js'
import { answerRenderer } from './sessions/answer.js'
import { createCoherence, newInstanceId, type Coherence } from './sessions/coherence/index.js'
import { inProcessFeed, postgresFeed, type InProcessNotifications } from './sessions/coherence/notifications.js'
import { createReplicaReader } from './sessions/replica-reader.js'
import { ensureExtraFields } from './sessions/extra-fields.js'
import { startWarmUp } from './sessions/warm-up.js'
import { errorCode, ExtraFieldsError } from './errors.js'
import { sessionRoutes } from './routes/sessions.js'
import { countedValidation } from './routes/counted-validation.js'
import { forwardAuthRoutes } from './routes/forward-auth.js'
import { healthRoutes } from './routes/health.js'
import { userSessionRoutes } from './routes/user-sessions.js'
import { metricsRoute } from './routes/metrics.js'
import { apiKeyGuard } from './api-keys.js'
import { clientErrorHandler } from './client-error.js'
import { limits } from './limits/index.js'

// fastify-metrics is CommonJS with its plugin on `default`
const fastifyMetrics = ((fastifyMetricsModule as unknown as { default?: unknown }).default ?? fastifyMetricsModule) as FastifyPluginAsync<Record<string, unknown>>

export interface AppOptions {
  config: Config
  /** The Postgres to use: DATABASE_URL, or the embedded one in demo mode. */
  databaseUrl: string
  /** Test seam: runs between a miss's Postgres read and its cache write. */
  beforeFill?: (digest: string) => Promise<void>
  /** The embedded demo database delivers its notifications in-process. */
  notifications?: InProcessNotifications
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionService
    coherence: Coherence
    cacheClient: GuardedRedis | undefined
  }
}

// Never the driver's words in a 5xx: they can carry host:port or a query.
const GENERIC_5XX: Record<number, string> = {
  503: 'The answer cannot be known right now; retry shortly'
}

export function loggerOptions (config: Config): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie',
        'headers.authorization', 'headers["x-api-key"]', 'headers.cookie', 'token', 'body.token'
      ],
      censor: '[redacted]'
    }
  }
}

export function serverOptions (config: Config): FastifyServerOptions {
  return {
    logger: loggerOptions(config),
    // one line per request at info would be the hot path's biggest cost
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4096,
    return503OnClosing: true,
    clientErrorHandler,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } }
  }
}

async function sessionValidator (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  const { config } = opts
  const log = fastify.log
  const metrics = createMetrics()

  await fastify.register(fastifyMetrics, {
    endpoint: null,
    promClient,
    defaultMetrics: { enabled: true, register: metrics.registry },
    // its route histogram costs a timer closure, a label object and a route
    // lookup per request: route-metrics.ts records the same series without
    routeMetrics: { enabled: false }
  })
  dropMisnamedDefaults(metrics.registry)
  routeMetrics(fastify, metrics.httpRequestDuration)

  const sql = createSql(config, opts.databaseUrl)
  const limiter = createLimiter(config.databasePoolMax, config.databaseQueueMax)
  const fields = config.extraFields
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
  const prober = createSql({ ...config, databasePoolMax: 1 }, opts.databaseUrl, 'session-validator-coherence')
  const id = newInstanceId()
  const feed = opts.notifications !== undefined
    ? inProcessFeed(opts.notifications, async (channel, payload) => { await prober`SELECT pg_notify(${channel}, ${payload})` })
    : postgresFeed(opts.databaseUrl, config, log, id)
  const coherence = createCoherence({ config, id, feed, prober, store, redis, cache, local, replica, metrics, log })
  const render = answerRenderer(fields)
  const service = createSessionService({ store, cache, local, coherence, activity, render, metrics, log, beforeFill: opts.beforeFill, replica, idle: idleRule(config) })
  const warmUp = cache !== undefined && redis !== undefined && config.cacheWarmSessions > 0
    ? startWarmUp({ store, cache, redis, coherence, remember: service.remember, prefix: config.sessionCachePrefix, sessions: config.cacheWarmSessions, rate: config.cacheWarmRate, metrics, log, beforeFill: opts.beforeFill })
    : undefined
  fastify.decorate('sessions', service)
  fastify.decorate('coherence', coherence)
  fastify.decorate('cacheClient', redis)

  // The extra columns must exist, and their triggers be in place, before any
  // answer carries them: a missing one stops the start. With Postgres down at
  // boot the check waits for it in the background instead.
  let extraRetry: NodeJS.Timeout | undefined
  fastify.addHook('onReady', async () => {
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
  })

  fastify.addHook('onClose', async () => {
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
  })

  fastify.setErrorHandler((err: Error & { statusCode?: number, code?: string, retryAfter?: number }, request, reply) => {
    const statusCode = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    const error = STATUS_CODES[statusCode] ?? 'Error'
    if (statusCode >= 500) {
      // A 503 is a dependency away: its cause is logged once per outage where
      // it is met (failureLog), and each answer is counted; a line per answer
      // would bury the log. Anything else is a bug: one line each.
      if (statusCode === 503) reply.header('retry-after', '1')
      else request.log.error({ code: err.code ?? err.name }, 'request failed')
      return reply.code(statusCode).send({ statusCode, code: err.code, error, message: GENERIC_5XX[statusCode] ?? error })
    }
    if (statusCode === 429 && err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
    // JSON.parse's message quotes the input, which may be a token.
    const message = err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError
      ? 'Body is not valid JSON'
      : err.message
    return reply.code(statusCode).send({ statusCode, code: err.code, error, message })
  })

  await fastify.register(import('./openapi.js'), { serviceApiKeys: config.serviceApiKeys, metricsToken: config.metricsToken })
  const localState = {
    enabled: local !== undefined,
    leaseHeld: () => coherence.localServable(),
    get size () { return local?.size ?? 0 },
    get bytes () { return local?.bytes ?? 0 }
  }
  fastify.register(healthRoutes(store, createRedisHealth(redis, config.sessionCachePrefix, config.sessionCacheTtlSeconds, metrics, localState)))
  fastify.register(metricsRoute(metrics.registry, config.metricsToken))
  fastify.register(async function guarded (scope) {
    apiKeyGuard(scope, config.serviceApiKeys)
    const gate = await limits(scope, config, metrics, log)
    const validation = countedValidation(service, metrics, gate)
    await scope.register(sessionRoutes(service, validation, fields))
    await scope.register(userSessionRoutes(service))
    await scope.register(forwardAuthRoutes(validation, config.forwardAuth))
  })
}

// Not encapsulated: the decorations and the error handler belong to the server.
export const app = fp(sessionValidator, { name: 'session-validator', fastify: '5.x' })

export async function buildServer (opts: AppOptions, overrides: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const fastify = Fastify({ ...serverOptions(opts.config), ...overrides })
  await fastify.register(app, opts)
  return fastify
}
