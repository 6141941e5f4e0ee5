// The validation every route shares, with its metrics and cache headers.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Metrics } from '../metrics.js'
import type { MissGate, SessionService, Validation } from '../sessions/session-service.js'

// One validation as every route makes it: through the one SessionService
// (same caches, same guarantees), timed, counted, and its cache status put on
// the reply.
export type CountedValidation = (digest: string, reply: FastifyReply) => Promise<Validation>

export function countedValidation (service: SessionService, metrics: Metrics, gate: MissGate<FastifyRequest> | undefined): CountedValidation {
  const duration = metrics.validationDuration
  // Label children bound once: no label lookup per request. Only a valid
  // answer can come from the cache (unknown tokens are never cached).
  const counted = {
    valid: { hit: metrics.validations.labels('valid', 'cache'), miss: metrics.validations.labels('valid', 'database') },
    not_found: metrics.validations.labels('not_found', 'database'),
    expired: metrics.validations.labels('expired', 'database'),
    idle: metrics.validations.labels('idle', 'database')
  }
  const failed = metrics.validations.labels('error', 'none')

  return async function validate (digest, reply) {
    const start = performance.now()
    let result
    try {
      result = await service.validate(digest, gate, reply.request)
    } catch (err) {
      failed.inc()
      throw err
    } finally {
      duration.observe((performance.now() - start) / 1000)
    }
    reply.header('x-session-cache', result.cache)
    if (result.tier !== undefined) reply.header('x-session-cache-tier', result.tier)
    if (result.status === 'valid') (result.cache === 'hit' ? counted.valid.hit : counted.valid.miss).inc()
    else counted[result.status].inc()
    return result
  }
}
