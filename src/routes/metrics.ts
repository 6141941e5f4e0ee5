import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { Registry } from '@platformatic/prom-client'
import { UnauthorizedMetricsError } from '../errors.js'

const digest = (value: string) => createHash('sha256').update(value).digest()

export function metricsRoute (registry: Registry, token: string | undefined) {
  const expected = token === undefined ? undefined : digest(`Bearer ${token}`)
  return async function (app: FastifyInstance) {
    app.get('/metrics', {
      logLevel: 'warn',
      schema: { summary: 'Prometheus metrics', hide: false }
    }, async (request, reply) => {
      if (expected !== undefined) {
        const given = request.headers.authorization
        if (given === undefined || !timingSafeEqual(digest(given), expected)) throw new UnauthorizedMetricsError()
      }
      reply.type(registry.contentType)
      return await registry.metrics()
    })
  }
}
