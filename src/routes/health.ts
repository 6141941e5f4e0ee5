import type { FastifyInstance } from 'fastify'
import type { SessionStore } from '../sessions/session-store.js'
import type { RedisHealth } from '../redis/redis-health.js'

const readiness = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'unready'] },
    postgres: { type: 'string', enum: ['up', 'down'] }
  },
  required: ['status', 'postgres']
} as const

export function healthRoutes (store: SessionStore, redisHealth: RedisHealth) {
  return async function (app: FastifyInstance) {
    // Liveness: the process serves. Nothing else is asked.
    app.get('/healthz', {
      logLevel: 'warn',
      schema: {
        summary: 'Liveness',
        response: { 200: { type: 'object', properties: { status: { type: 'string', const: 'ok' } }, required: ['status'] } }
      }
    }, async () => ({ status: 'ok' }))

    // Readiness: Postgres answers. Redis is left out on purpose: without it the
    // service is slower, not wrong, and pulling every instance out of rotation
    // because the cache blipped would turn a cache problem into an outage.
    app.get('/readyz', {
      logLevel: 'warn',
      schema: { summary: 'Readiness (Postgres answers)', response: { 200: readiness, 503: readiness } }
    }, async (_request, reply) => {
      try {
        await store.ping()
        return { status: 'ready', postgres: 'up' }
      } catch {
        reply.code(503).header('retry-after', '1')
        return { status: 'unready', postgres: 'down' }
      }
    })

    app.get('/healthz/redis', {
      logLevel: 'warn',
      schema: { summary: 'The cache\'s health (never shows a URL or credentials)' }
    }, async (_request, reply) => {
      const report = await redisHealth.report()
      if (report.status === 'unhealthy') reply.code(503)
      return report
    })
  }
}
