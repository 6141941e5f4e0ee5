// Limits on the guarded routes: the request limit (off by default) and the
// failed-lookup budget that protects Postgres. Register after the API-key
// guard: a 403 costs no limiter call, and a key seen here is a valid one.
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import type { Metrics } from '../metrics.js'
import { createCallers } from './callers.js'
import type { MissGate } from '../sessions/session-service.js'
import { failedLookupGate } from './failed-lookups.js'
import { requestLimit } from './request-limit.js'
import { createSharedCounter } from './shared-counter.js'

export async function limits (scope: FastifyInstance, config: Config, metrics: Metrics, log: FastifyBaseLogger): Promise<MissGate<FastifyRequest> | undefined> {
  const { rateLimitMax, rateLimitFailedMax, rateLimitCallerFailedMax } = config
  if (rateLimitMax === 0 && rateLimitFailedMax === 0 && rateLimitCallerFailedMax === 0) return undefined
  const counter = createSharedCounter(config, metrics, log)
  const callers = createCallers({ keysOn: config.serviceApiKeys.length > 0, trustedProxies: config.trustedProxies })
  scope.addHook('onClose', async () => { await counter.close() })
  // the first requests after a boot are counted where every instance sees them
  scope.addHook('onReady', async () => { await counter.settle(config.redisConnectTimeoutMs) })
  if (rateLimitMax > 0) await requestLimit(scope, rateLimitMax, config.rateLimitWindowMs, callers, counter, metrics)
  if (rateLimitFailedMax === 0 && rateLimitCallerFailedMax === 0) return undefined
  return failedLookupGate({ perEndUser: rateLimitFailedMax, perCaller: rateLimitCallerFailedMax }, callers, counter, metrics)
}
