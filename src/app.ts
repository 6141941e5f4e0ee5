// The service as a Fastify plugin: metrics, the session machinery (sessions/index.ts), routes, the error handler.
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import '@fastify/swagger'
import fp from 'fastify-plugin'
import fastifyMetricsModule from 'fastify-metrics'
import promClient from '@platformatic/prom-client'
import type { Config } from './config.js'
import { createMetrics, dropMisnamedDefaults } from './metrics.js'
import { routeMetrics } from './route-metrics.js'
import { createRedisHealth } from './redis/redis-health.js'
import type { GuardedRedis } from './redis/guarded-redis.js'
import { createSessions } from './sessions/index.js'
import type { SessionService } from './sessions/session-service.js'
import type { Coherence } from './sessions/coherence/index.js'
import type { InProcessNotifications } from './sessions/coherence/notifications.js'
import { errorHandler } from './error-handler.js'
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

  const sessions = createSessions({ config, databaseUrl: opts.databaseUrl, metrics, log, beforeFill: opts.beforeFill, notifications: opts.notifications })
  const { service, coherence, store, redis, local } = sessions
  fastify.decorate('sessions', service)
  fastify.decorate('coherence', coherence)
  fastify.decorate('cacheClient', redis)
  // The extra columns must exist, and their triggers be in place, before any
  // answer carries them: a missing one stops the start.
  fastify.addHook('onReady', async () => { await sessions.checkExtraFields() })
  fastify.addHook('onClose', async () => { await sessions.close() })
  fastify.setErrorHandler(errorHandler)

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
    await scope.register(sessionRoutes(service, validation, config.extraFields))
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
