// The service's answers turned into outcomes: validate never throws and never
// calls a session invalid unless the service itself said so; revoke throws
// when it cannot say that it revoked, so that a failed sign-out is never silent.
import { isWellFormedToken } from './token.js'
import { createTransport, type Answer, type TransportOptions } from './transport.js'
import type { CallOptions, Extras, Invalid, SessionTarget, Unavailable, Validation } from './types.js'

export type SessionClientOptions = TransportOptions

export interface RevokeAllOptions extends CallOptions {
  /** Revoke all but this session ("sign out everywhere else"). */
  keep?: SessionTarget
}

export interface SessionClient<E extends Extras = Extras> {
  validate(token: string, options?: CallOptions): Promise<Validation<E>>
  /** Revokes one session; resolves with how many were revoked (0 or 1). */
  revoke(target: SessionTarget, options?: CallOptions): Promise<number>
  /** Revokes every session of a user; resolves with how many were revoked. */
  revokeAll(userId: string, options?: RevokeAllOptions): Promise<number>
  /** Closes the pool's connections. */
  close(): Promise<void>
}

/** What revoke and revokeAll throw: the revocation may not have happened. */
export class SessionValidatorError extends Error {
  readonly reason: Unavailable['reason'] | 'bad_request'
  readonly status: number | undefined
  readonly retryAfterMs: number | undefined

  constructor (message: string, reason: SessionValidatorError['reason'], status?: number, retryAfterMs?: number) {
    super(message)
    this.name = 'SessionValidatorError'
    this.reason = reason
    this.status = status
    this.retryAfterMs = retryAfterMs
  }
}

const MALFORMED: Invalid = Object.freeze({ outcome: 'invalid', reason: 'malformed' })

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function unexpected (answer: Answer): Unavailable {
  return { outcome: 'unavailable', reason: 'unexpected_response', status: answer.status }
}

// Only the service's own 200 and 401 shapes are answers; anything else (a
// proxy's 401 page, a 500) is "could not check", never a logout.
function toValidation<E extends Extras> (answer: Answer | Unavailable): Validation<E> {
  if ('outcome' in answer) return answer
  const body = answer.body
  switch (answer.status) {
    case 200:
      if (isObject(body) && body.valid === true && isObject(body.session) && isObject(body.user)) {
        return { outcome: 'valid', session: body.session, user: body.user } as Validation<E>
      }
      return unexpected(answer)
    case 401:
      if (isObject(body) && body.valid === false && typeof body.reason === 'string') {
        return { outcome: 'invalid', reason: body.reason as Invalid['reason'] }
      }
      return unexpected(answer)
    // The service refuses the token itself: no session can have it.
    case 400:
    case 413:
      return MALFORMED
    case 403:
      return { outcome: 'unavailable', reason: 'forbidden', status: 403 }
    default:
      return unexpected(answer)
  }
}

function toRevoked (answer: Answer | Unavailable): number {
  if ('outcome' in answer) {
    throw new SessionValidatorError(`session-validator could not revoke: ${answer.reason}`, answer.reason, answer.status, answer.retryAfterMs)
  }
  const body = answer.body
  if (answer.status === 200 && isObject(body) && typeof body.revoked === 'number') return body.revoked
  if (answer.status === 400) {
    const message = isObject(body) && typeof body.message === 'string' ? body.message : 'bad request'
    throw new SessionValidatorError(`session-validator refused the revoke: ${message}`, 'bad_request', 400)
  }
  const reason = answer.status === 403 ? 'forbidden' : 'unexpected_response'
  throw new SessionValidatorError(`session-validator could not revoke: ${reason} (HTTP ${answer.status})`, reason, answer.status)
}

export function createSessionClient<E extends Extras = Extras> (options: SessionClientOptions): SessionClient<E> {
  const transport = createTransport(options)
  return {
    async validate (token, call) {
      if (!isWellFormedToken(token)) return MALFORMED
      return toValidation<E>(await transport.post('/sessions/validate', { token }, call))
    },
    async revoke (target, call) {
      // No session has a malformed token: nothing to revoke, nothing to ask.
      if ('token' in target && !isWellFormedToken(target.token)) return 0
      return toRevoked(await transport.post('/sessions/revoke', target, call))
    },
    async revokeAll (userId, call = {}) {
      const { keep, ...rest } = call
      const payload = keep === undefined ? {} : { keep }
      return toRevoked(await transport.post(`/users/${encodeURIComponent(userId)}/sessions/revoke`, payload, rest))
    },
    close: () => transport.close()
  }
}
