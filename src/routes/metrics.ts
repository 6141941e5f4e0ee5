// GET /metrics, behind METRICS_TOKEN when one is set.
import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Registry } from '@platformatic/prom-client'
import { UnauthorizedMetricsError } from '../errors.js'
import { sha256 } from '../sha256.js'
import { exposition } from '../metrics.js'
import { errorResponse, headersTooLarge } from './schemas.js'

export function metricsRoute (registry: Registry, token: string | undefined) {
  const expected = token === undefined ? undefined : sha256(`Bearer ${token}`)
  return async function (app: FastifyInstance) {
    app.get('/metrics', {
      logLevel: 'warn',
      schema: {
        operationId: 'metrics',
        summary: 'Prometheus metrics (text exposition format)',
        // the scheme is declared by the OpenAPI plugin when METRICS_TOKEN is set
        security: expected === undefined ? [] : [{ metricsToken: [] }],
        response: {
          200: { description: 'Prometheus text exposition', content: { 'text/plain': { schema: { type: 'string' } } } },
          ...(expected === undefined ? {} : { 401: { ...errorResponse, description: 'Missing or wrong bearer token (METRICS_TOKEN)' } }),
          431: headersTooLarge
        }
      }
    }, async (request, reply) => {
      if (expected !== undefined) {
        const given = request.headers.authorization
        if (given === undefined || !timingSafeEqual(sha256(given), expected)) throw new UnauthorizedMetricsError()
      }
      reply.type(registry.contentType)
      return await exposition(registry)
    })
  }
}
