// The validation every route shares, with its metrics and cache headers.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Metrics } from '../metrics.js'
import type { MemoryKey } from '../sessions/local-cache.js'
import type { MissGate, SessionService, Validation } from '../sessions/session-service.js'

// One validation as every route makes it: through the one SessionService
// (same caches, same guarantees), timed, counted, and its cache status put on
// the reply. An answer from memory takes the synchronous path: no promise,
// nothing allocated.
export interface CountedValidation {
  /** The answer from this instance's memory, headers set; undefined when validate() must go on. */
  fromMemory(key: MemoryKey, reply: FastifyReply): string | undefined
  validate(key: MemoryKey, reply: FastifyReply): Promise<Validation>
}

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

  return {
    fromMemory (key, reply) {
      const start = performance.now()
      const answer = service.fromMemory(key)
      if (answer === undefined) return undefined
      duration.observe((performance.now() - start) / 1000)
      counted.valid.hit.inc()
      reply.header('x-session-cache', 'hit')
      reply.header('x-session-cache-tier', 'local')
      return answer
    },

    async validate (key, reply) {
      const start = performance.now()
      let result
      try {
        result = await service.validate(key, gate, reply.request)
      } catch (err) {
        failed.inc()
        throw err
      } finally {
        duration.observe((performance.now() - start) / 1000)
      }
      reply.header('x-session-cache', result.cache)
      if (result.status === 'failed') {
        failed.inc()
        throw result.error
      }
      if (result.tier !== undefined) reply.header('x-session-cache-tier', result.tier)
      if (result.status === 'valid') (result.cache === 'hit' ? counted.valid.hit : counted.valid.miss).inc()
      else counted[result.status].inc()
      return result
    }
  }
}
