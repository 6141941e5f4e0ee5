// The errors a client can see, and what a log line may say of a failure.
import createError from '@fastify/error'

// Every error a client can see is one of these; their messages are ours, never a
// driver's, so nothing about hosts, credentials or tokens can leak through them.
export const DependencyUnavailableError = createError(
  'SV_DEPENDENCY_UNAVAILABLE',
  'The answer cannot be known right now; retry shortly',
  503
)
export const BadRequestError = createError('SV_BAD_REQUEST', '%s', 400)
export const ForbiddenError = createError('SV_FORBIDDEN', 'A valid x-api-key header is required', 403)
export const UnauthorizedMetricsError = createError('SV_METRICS_UNAUTHORIZED', 'A valid bearer token is required', 401)
const RateLimitedError = createError('SV_RATE_LIMITED', 'Too many %s; retry in %s seconds', 429)

/** A 429 that says when to retry (the error handler sends it as Retry-After). */
export function rateLimited (what: string, retryAfterSeconds: number): Error & { retryAfter: number } {
  return Object.assign(new RateLimitedError(what, String(retryAfterSeconds)), { retryAfter: retryAfterSeconds })
}

// What a log line may say about a failure: its code or class name, never its
// message (a driver's message can carry host:port, a query or a token).
export function errorCode (err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown, name?: unknown }
    if (typeof e.code === 'string') return e.code
    if (typeof e.name === 'string') return e.name
  }
  return 'unknown'
}

/**
 * A failure that repeats (per request, per retry, per epoch move) logged once
 * per change of its code, not once per occurrence: `failed(err)` warns when
 * the code differs from the last one, `ok()` marks the recovery (logged when
 * `recovered` is given) so that the next failure is told again.
 */
export function failureLog (warn: (code: string) => void, recovered?: () => void): { failed(err: unknown): void, ok(): void } {
  let last: string | undefined
  return {
    failed (err) {
      const code = errorCode(err)
      if (code !== last) warn(code)
      last = code
    },
    ok () {
      if (last !== undefined) recovered?.()
      last = undefined
    }
  }
}
