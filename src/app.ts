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
import { createGuardedRedis, redisConfigured, type GuardedRedis } from './redis/guarded-redis.js'
import { createRedisHealth } from './redis/redis-health.js'
import { createSessionCache } from './sessions/session-cache.js'
import { createSessionStore } from './sessions/session-store.js'
import { createActivityWriter } from './sessions/activity-writer.js'
import { createSessionService, type SessionService } from './sessions/session-service.js'
import { createInvalidationListener } from './sessions/invalidation-listener.js'
import { createReplicaReader } from './sessions/replica-reader.js'
import { sessionRoutes } from './routes/sessions.js'
import { healthRoutes } from './routes/health.js'
import { metricsRoute } from './routes/metrics.js'
import { apiKeyGuard } from './api-keys.js'
import { rateLimits } from './rate-limit.js'

// fastify-metrics is CommonJS with its plugin on `default`
const fastifyMetrics = ((fastifyMetricsModule as unknown as { default?: unknown }).default ?? fastifyMetricsModule) as FastifyPluginAsync<Record<string, unknown>>

export interface AppOptions {
  config: Config
  /** The Postgres to use: DATABASE_URL, or the embedded one in demo mode. */
  databaseUrl: string
  /** Test seam: runs between a miss's Postgres read and its cache write. */
  beforeFill?: (digest: string) => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionService
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
    routeMetrics: {
      // no summary: histogram_quantile gives the same, summed across replicas.
      // fastify-metrics creates it anyway; registers: [] keeps it off every registry.
      enabled: { histogram: true, summary: false },
      overrides: {
        histogram: { name: 'http_request_duration_seconds', registers: [metrics.registry] },
        summary: { registers: [] }
      }
    }
  })
  dropMisnamedDefaults(metrics.registry)

  const sql = createSql(config, opts.databaseUrl)
  const limiter = createLimiter(config.databasePoolMax, config.databaseQueueMax)
  const store = createSessionStore(sql, limiter, metrics, config.databaseQueryTimeoutMs)

  let redis: GuardedRedis | undefined
  if (redisConfigured(config)) {
    redis = createGuardedRedis(config, metrics, log)
    redis.connect()
  } else {
    log.warn('REDIS_URL (or REDIS_CLUSTER_NODES, REDIS_SENTINELS) is not set: the cache is off and every lookup goes to Postgres')
  }
  const cache = redis === undefined ? undefined : createSessionCache(redis, config.sessionCachePrefix, config.sessionCacheTtlSeconds)
  const activity = createActivityWriter(store, config.activityResolutionSeconds, metrics, log)
  // A replica is only worth reading with a cache whose tombstones can veto it.
  const replica = config.databaseReadUrl !== undefined && cache !== undefined
    ? createReplicaReader(config.databaseReadUrl, config, metrics, log)
    : undefined
  if (config.databaseReadUrl !== undefined && cache === undefined) log.warn('DATABASE_READ_URL is ignored while the cache is off')
  const service = createSessionService({ store, cache, activity, metrics, log, beforeFill: opts.beforeFill, replica })
  const listener = createInvalidationListener(opts.databaseUrl, config, {
    onNotification: payload => service.handleNotification(payload),
    onListening: () => service.resync()
  }, log)
  redis?.onServerChange(() => { service.redisChanged().catch(() => {}) })
  fastify.decorate('sessions', service)
  fastify.decorate('cacheClient', redis)

  fastify.addHook('onClose', async () => {
    await listener.close()
    await activity.close()
    await replica?.close()
    await redis?.close()
    await sql.end({ timeout: 5 })
  })

  fastify.setErrorHandler((err: Error & { statusCode?: number, code?: string, validation?: unknown }, request, reply) => {
    const statusCode = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    const error = STATUS_CODES[statusCode] ?? 'Error'
    if (statusCode >= 500) {
      request.log.error({ code: err.code ?? err.name }, 'request failed')
      if (statusCode === 503) reply.header('retry-after', '1')
      return reply.code(statusCode).send({ statusCode, code: err.code, error, message: GENERIC_5XX[statusCode] ?? error })
    }
    // JSON.parse's message quotes the input, which may be a token.
    const message = err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError
      ? 'Body is not valid JSON'
      : err.message
    return reply.code(statusCode).send({ statusCode, code: err.code, error, message })
  })

  await fastify.register(import('./openapi.js'), { serviceApiKeys: config.serviceApiKeys, metricsToken: config.metricsToken })
  fastify.register(healthRoutes(store, createRedisHealth(redis, config.sessionCachePrefix, config.sessionCacheTtlSeconds, metrics)))
  fastify.register(metricsRoute(metrics.registry, config.metricsToken))
  fastify.register(async function guarded (scope) {
    apiKeyGuard(scope, config.serviceApiKeys)
    await rateLimits(scope, { config, metrics, log })
    await scope.register(sessionRoutes(service, metrics))
  })
}

// Not encapsulated: the decorations and the error handler belong to the server.
export const app = fp(sessionValidator, { name: 'session-validator', fastify: '5.x' })

export async function buildServer (opts: AppOptions, overrides: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const fastify = Fastify({ ...serverOptions(opts.config), ...overrides })
  await fastify.register(app, opts)
  return fastify
}
