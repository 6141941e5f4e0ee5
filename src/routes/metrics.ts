import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Registry } from '@platformatic/prom-client'
import { UnauthorizedMetricsError } from '../errors.js'
import { sha256 } from '../sha256.js'

export function metricsRoute (registry: Registry, token: string | undefined) {
  const expected = token === undefined ? undefined : sha256(`Bearer ${token}`)
  return async function (app: FastifyInstance) {
    app.get('/metrics', {
      logLevel: 'warn',
      schema: { summary: 'Prometheus metrics', hide: false }
    }, async (request, reply) => {
      if (expected !== undefined) {
        const given = request.headers.authorization
        if (given === undefined || !timingSafeEqual(sha256(given), expected)) throw new UnauthorizedMetricsError()
      }
      reply.type(registry.contentType)
      return await registry.metrics()
    })
  }
}
