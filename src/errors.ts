// The errors a client can see, and what a log line may say of a failure.
import createError from '@fastify/error'

// Every error a client can see is one of these; their messages are ours, never a
// driver's, so nothing about hosts, credentials or tokens can leak through them.
export const UNAVAILABLE_MESSAGE = 'The answer cannot be known right now; retry shortly'
export const DependencyUnavailableError = createError('SV_DEPENDENCY_UNAVAILABLE', UNAVAILABLE_MESSAGE, 503)
export const BadRequestError = createError('SV_BAD_REQUEST', '%s', 400)
export const ForbiddenError = createError('SV_FORBIDDEN', 'A valid x-api-key header is required', 403)
export const UnauthorizedMetricsError = createError('SV_METRICS_UNAUTHORIZED', 'A valid bearer token is required', 401)
const RateLimitedError = createError('SV_RATE_LIMITED', 'Too many %s; retry in %s seconds', 429)

/** A 429 that says when to retry (the error handler sends it as Retry-After). */
export function rateLimited (what: string, retryAfterSeconds: number): Error & { retryAfter: number } {
  return Object.assign(new RateLimitedError(what, String(retryAfterSeconds)), { retryAfter: retryAfterSeconds })
}

/** A setting that cannot work: the process names the variable and stops. */
export class ConfigError extends Error {
  constructor (readonly variable: string, reason: string) {
    super(`${variable}: ${reason}`)
    this.name = 'ConfigError'
  }
}

/** An extra field whose column is missing or of another type, or whose triggers cannot be installed. */
export class ExtraFieldsError extends Error {
  constructor (readonly variable: string, reason: string) {
    super(`${variable}: ${reason}`)
    this.name = 'ExtraFieldsError'
  }
}

/** A call given up after its deadline; `code` says which (QUERY_TIMEOUT, TIMEOUT). */
export class TimeoutError extends Error {
  constructor (readonly code: string, message?: string) {
    super(message)
  }
}

// What a log line may say about a failure: its code, a Redis reply's first
// word ("WRONGPASS invalid username-password pair") or its class name, never
// its message (a driver's message can carry host:port, a query or a token).
export function errorCode (err: unknown): string {
  const e = err as { code?: unknown, message?: unknown, name?: unknown } | undefined
  if (typeof e?.code === 'string') return e.code
  if (typeof e?.message === 'string' && /^[A-Z][A-Z_-]{2,}\b/.test(e.message)) return e.message.split(' ')[0]!
  return typeof e?.name === 'string' ? e.name : 'unknown'
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
