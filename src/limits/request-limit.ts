// The per-caller request limit (RATE_LIMIT_MAX, off by default): every request
// to a guarded route counts, answered from a cache or not.
import type { FastifyInstance } from 'fastify'
import rateLimit, { type FastifyRateLimitStore } from '@fastify/rate-limit'
import { rateLimited } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Callers } from './callers.js'
import type { SharedCounter } from './shared-counter.js'

type Answer = (error: Error | null, result?: { current: number, ttl: number }) => void

export async function requestLimit (scope: FastifyInstance, max: number, windowMs: number, callers: Callers, counter: SharedCounter, metrics: Metrics): Promise<void> {
  const refused = metrics.rateLimited.labels('requests')
  const fallbacks = metrics.rateLimitFallbacks
  // @fastify/rate-limit's store, over the shared counter (the windows are the
  // counter's, aligned to the clock, whatever the plugin asks)
  class Store implements FastifyRateLimitStore {
    incr (key: string, answer: Answer): void {
      if (!counter.shared) fallbacks.inc()
      answer(null, { current: counter.add(`req:${key}`), ttl: counter.resetInMs() })
    }

    child (): FastifyRateLimitStore { return this }
  }
  await scope.register(rateLimit, {
    global: true,
    max,
    timeWindow: windowMs,
    keyGenerator: request => callers.caller(request),
    store: Store,
    // the store never fails (memory answers instead); if it did, serve
    skipOnError: true,
    errorResponseBuilder: (_request, context) => {
      refused.inc()
      return rateLimited('requests', Math.max(1, Math.ceil(context.ttl / 1000)))
    }
  })
}
