// The failed-lookup budget: what protects Postgres from token guessing. A
// lookup that reaches Postgres and finds no valid session costs a query; past
// the budget, only lookups that would reach Postgres are refused (429) —
// answers from a cache are served as ever, so a flood never locks out the
// caller's signed-in users.
import type { FastifyRequest } from 'fastify'
import { rateLimited } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { MissGate } from '../sessions/session-service.js'
import type { Callers } from './callers.js'
import type { SharedCounter } from './shared-counter.js'

interface Charge { endUser: string | undefined, caller: string }

export interface FailedLookupLimits {
  /** Per end-user address a trusted caller forwarded (RATE_LIMIT_FAILED_MAX); 0: none. */
  perEndUser: number
  /** Per caller (RATE_LIMIT_CALLER_FAILED_MAX); 0: none. */
  perCaller: number
}

// Every failed lookup counts against the caller, and, when its address is
// known, against the end user: one abuser is stopped at the end user's budget
// long before the caller's, which only a flood from many addresses reaches.
export function failedLookupGate (limits: FailedLookupLimits, callers: Callers, counter: SharedCounter, metrics: Metrics): MissGate<FastifyRequest> {
  const byEndUser = metrics.rateLimited.labels('failed_lookups_end_user')
  const byCaller = metrics.rateLimited.labels('failed_lookups_caller')
  const fallbacks = metrics.rateLimitFallbacks
  const refuse = (counted: { inc(): void }) => {
    counted.inc()
    return rateLimited('failed lookups', Math.max(1, Math.ceil(counter.resetInMs() / 1000)))
  }
  return {
    admit (request) {
      if (!counter.shared) fallbacks.inc()
      const endUser = limits.perEndUser > 0 ? callers.endUser(request) : undefined
      const caller = callers.caller(request)
      if (endUser !== undefined && counter.peek(`fu:${endUser}`) >= limits.perEndUser) throw refuse(byEndUser)
      if (limits.perCaller > 0 && counter.peek(`fc:${caller}`) >= limits.perCaller) throw refuse(byCaller)
      return { endUser, caller }
    },
    failed (charge) {
      const { endUser, caller } = charge as Charge
      if (endUser !== undefined) counter.add(`fu:${endUser}`)
      if (limits.perCaller > 0) counter.add(`fc:${caller}`)
    }
  }
}
