// The package's entry point; the Fastify plugin is `@session-validator/client/fastify`.
export { createSessionClient, SessionValidatorError } from './client.js'
export type { SessionClient, SessionClientOptions, RevokeAllOptions } from './client.js'
export type { RetryInfo } from './transport.js'
export { authenticate, tokenFrom } from './authenticate.js'
export type { Authentication, AuthenticateOptions, HeadersLike, Missing } from './authenticate.js'
export { retryAfterSeconds } from './retry-after.js'
export type {
  CallOptions, Extras, Invalid, InvalidReason, Session, SessionTarget, Unavailable, UnavailableReason, User, Valid, Validation
} from './types.js'
