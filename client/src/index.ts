// The package's entry point; the Fastify plugin is `@session-validator/client/fastify`,
// the Express middleware `@session-validator/client/express`.
export { createSessionClient, SessionValidatorError } from './client.js'
export type { ErrorReason, OutcomeInfo, SessionClient, SessionClientOptions, RevokeAllOptions } from './client.js'
export type { Hook } from './hooks.js'
export type { RetryInfo } from './transport.js'
export { authenticate, tokenFrom } from './authenticate.js'
export type { Authentication, AuthenticateOptions, HeadersLike, Missing } from './authenticate.js'
export { authOf } from './guard.js'
export { retryAfterSeconds } from './retry-after.js'
export type {
  Auth, AuthExtras, CallOptions, Extras, Invalid, InvalidReason, KnownInvalidReason, Session, SessionTarget, Unavailable, UnavailableReason, User, Valid, Validation
} from './types.js'
