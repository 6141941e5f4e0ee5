// /healthz, /readyz and /healthz/redis: what Railway and operators probe.
import type { FastifyInstance } from 'fastify'
import type { SessionStore } from '../sessions/session-store.js'
import type { RedisHealth } from '../redis/redis-health.js'
import { headersTooLarge } from './schemas.js'

const readiness = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'unready'] },
    postgres: { type: 'string', enum: ['up', 'down'] }
  },
  required: ['status', 'postgres']
} as const

const num = { type: ['number', 'null'] } as const
const redisHealthSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['healthy', 'degraded', 'unhealthy'] },
    timestamp: { type: 'string', format: 'date-time' },
    redis: {
      type: 'object',
      properties: { connected: { type: 'boolean' }, version: { type: ['string', 'null'] }, uptime: num, usedMemory: num, totalKeys: num },
      required: ['connected', 'version', 'uptime', 'usedMemory', 'totalKeys']
    },
    sessionCache: {
      type: 'object',
      properties: {
        enabled: { type: 'boolean' },
        healthy: { type: 'boolean' },
        metrics: {
          type: 'object',
          properties: {
            hits: { type: 'number' },
            misses: { type: 'number' },
            errors: { type: 'number' },
            invalidations: { type: 'number' },
            total: { type: 'number' },
            hitRate: { type: 'number' },
            ttl: { type: 'number' }
          },
          required: ['hits', 'misses', 'errors', 'invalidations', 'total', 'hitRate', 'ttl']
        },
        pool: {
          type: 'object',
          properties: { size: { type: 'number' }, available: { type: 'number' }, pending: { type: 'number' } },
          required: ['size', 'available', 'pending']
        }
      },
      required: ['enabled', 'healthy', 'metrics', 'pool']
    },
    circuit: {
      type: 'object',
      properties: { state: { type: 'string', enum: ['closed', 'open', 'half-open'] } },
      required: ['state']
    },
    performance: {
      type: 'object',
      properties: { ping: num, set: num, get: num },
      required: ['ping', 'set', 'get']
    },
    localCache: {
      type: 'object',
      description: 'This instance\'s memory cache in front of Redis (not part of the status)',
      properties: {
        enabled: { type: 'boolean' },
        leaseHeld: { type: 'boolean', description: 'whether this instance may answer from memory right now' },
        entries: { type: 'number' },
        bytes: { type: 'number' },
        hits: { type: 'number' },
        misses: { type: 'number' }
      },
      required: ['enabled', 'leaseHeld', 'entries', 'bytes', 'hits', 'misses']
    },
    errors: { type: 'array', items: { type: 'string' } }
  },
  required: ['status', 'timestamp', 'redis', 'sessionCache', 'circuit', 'performance', 'localCache', 'errors']
} as const

export function healthRoutes (store: SessionStore, redisHealth: RedisHealth) {
  return async function (app: FastifyInstance) {
    // Liveness: the process serves. Nothing else is asked.
    app.get('/healthz', {
      logLevel: 'warn',
      schema: {
        operationId: 'liveness',
        summary: 'Liveness',
        response: { 200: { type: 'object', properties: { status: { type: 'string', const: 'ok' } }, required: ['status'] }, 431: headersTooLarge }
      }
    }, async () => ({ status: 'ok' }))

    // Readiness: Postgres answers. Redis is left out on purpose: without it the
    // service is slower, not wrong, and pulling every instance out of rotation
    // because the cache blipped would turn a cache problem into an outage.
    app.get('/readyz', {
      logLevel: 'warn',
      schema: { operationId: 'readiness', summary: 'Readiness (Postgres answers)', response: { 200: readiness, 431: headersTooLarge, 503: readiness } }
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
      schema: {
        operationId: 'cacheHealth',
        summary: 'The cache\'s health (never shows a URL or credentials)',
        response: { 200: redisHealthSchema, 431: headersTooLarge, 503: redisHealthSchema }
      }
    }, async (_request, reply) => {
      const report = await redisHealth.report()
      if (report.status === 'unhealthy') reply.code(503)
      return report
    })
  }
}
