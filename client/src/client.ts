// The service's answers turned into outcomes: validate never rejects for
// anything the network or the service does, and never calls a session invalid
// unless the service itself said so; revoke rejects when it cannot say that it
// revoked, so that a failed sign-out is never silent. A closed client rejects
// at once: calling it is a bug, not an outage.
import { safely, type Hook } from './hooks.js'
import { isWellFormedToken } from './token-rules.js'
import { createTransport, type Answer, type Exchange, type TransportOptions } from './transport.js'
import type { CallOptions, Extras, Invalid, SessionTarget, Unavailable, Validation } from './types.js'

/** Told once per call, whatever its outcome: count them, time them, log them. */
export interface OutcomeInfo {
  call: 'validate' | 'revoke' | 'revokeAll'
  /** validate: `valid`, `invalid` or `unavailable`; revoke and revokeAll: `revoked` or `failed` (the call rejected). */
  outcome: 'valid' | 'invalid' | 'unavailable' | 'revoked' | 'failed'
  /** invalid's, unavailable's or the error's reason. */
  reason?: string
  /** The HTTP status of the last answer, when there was one. */
  status?: number
  /** The failed request's error code (`ECONNREFUSED`, ...), when no answer came. */
  cause?: string
  /** Requests sent, retries included; 0 when none was needed (a malformed token). */
  attempts: number
  /** From the call to its outcome, retries and waits included. */
  latencyMs: number
}

export interface SessionClientOptions extends TransportOptions {
  /** Told once per call with its outcome and latency. A throwing hook is ignored. */
  onOutcome?: Hook<OutcomeInfo> | undefined
}

export interface RevokeAllOptions extends CallOptions {
  /** Revoke all but this session ("sign out everywhere else"). */
  keep?: SessionTarget | undefined
}

export interface SessionClient<E extends Extras = Extras> {
  validate(token: string, options?: CallOptions): Promise<Validation<E>>
  /** Revokes one session; resolves with how many were revoked (0 or 1). */
  revoke(target: SessionTarget, options?: CallOptions): Promise<number>
  /** Revokes every session of a user; resolves with how many were revoked. */
  revokeAll(userId: string, options?: RevokeAllOptions): Promise<number>
  /** Closes the client's pool (not a dispatcher of your own); calls after it reject. Idempotent. */
  close(): Promise<void>
}

export type ErrorReason = Unavailable['reason'] | 'bad_request' | 'closed'

/** What revoke and revokeAll reject with (the revocation may not have happened), and every call of a closed client. */
export class SessionValidatorError extends Error {
  readonly reason: ErrorReason
  readonly status: number | undefined
  readonly retryAfterMs: number | undefined
  /** The failed request's error code (`ECONNREFUSED`, ...), when no answer came. */
  declare readonly cause: string | undefined

  constructor (message: string, reason: ErrorReason, details: { status?: number | undefined, retryAfterMs?: number | undefined, cause?: string | undefined } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'SessionValidatorError'
    this.reason = reason
    this.status = details.status
    this.retryAfterMs = details.retryAfterMs
  }
}

const MALFORMED: Invalid = Object.freeze({ outcome: 'invalid', reason: 'malformed' })

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function unexpected (answer: Answer): Unavailable {
  return { outcome: 'unavailable', reason: 'unexpected_response', status: answer.status }
}

// The code of the service's own error body (`{statusCode, code, error,
// message}`, its status repeated). A proxy's HTML page has none.
function serviceCode (answer: Answer): string | undefined {
  const body = answer.body
  return isObject(body) && body.statusCode === answer.status && typeof body.code === 'string' ? body.code : undefined
}

// Only the service's own 200, 401, 400 and 413 are answers; anything else (a
// proxy's 400 or 401 page, a 500) is "could not check", never a logout.
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
        return { outcome: 'invalid', reason: body.reason }
      }
      return unexpected(answer)
    // The service refuses the token itself (a rule stricter than the client's,
    // one day): no session can have it.
    case 400:
      return serviceCode(answer) === 'SV_BAD_REQUEST' ? MALFORMED : unexpected(answer)
    case 413:
      return serviceCode(answer) === 'FST_ERR_CTP_BODY_TOO_LARGE' ? MALFORMED : unexpected(answer)
    case 403:
      return { outcome: 'unavailable', reason: 'forbidden', status: 403 }
    default:
      return unexpected(answer)
  }
}

function toRevoked (answer: Answer | Unavailable): number {
  if ('outcome' in answer) {
    const because = answer.cause === undefined ? answer.reason : `${answer.reason} (${answer.cause})`
    throw new SessionValidatorError(`session-validator could not revoke: ${because}`, answer.reason, answer)
  }
  const body = answer.body
  if (answer.status === 200 && isObject(body) && typeof body.revoked === 'number') return body.revoked
  // The service's own refusal (its rule, or its schema: a session id or user id that is not a uuid)
  if (answer.status === 400 && /^(SV_|FST_ERR_)/.test(serviceCode(answer) ?? '')) {
    const message = typeof (body as { message?: unknown }).message === 'string' ? (body as { message: string }).message : 'bad request'
    throw new SessionValidatorError(`session-validator refused the revoke: ${message}`, 'bad_request', { status: 400 })
  }
  const reason = answer.status === 403 ? 'forbidden' : 'unexpected_response'
  throw new SessionValidatorError(`session-validator could not revoke: ${reason} (HTTP ${answer.status})`, reason, { status: answer.status })
}

function described (info: OutcomeInfo, of: { reason?: string | undefined, status?: number | undefined, cause?: string | undefined }): OutcomeInfo {
  if (of.reason !== undefined) info.reason = of.reason
  if (of.status !== undefined) info.status = of.status
  if (of.cause !== undefined) info.cause = of.cause
  return info
}

export function createSessionClient<E extends Extras = Extras> (options: SessionClientOptions): SessionClient<E> {
  const transport = createTransport(options)
  const onOutcome = safely(options.onOutcome, 'onOutcome')
  let closed = false

  function open (): void {
    if (closed) throw new SessionValidatorError('session-validator client is closed', 'closed')
  }

  async function revoking (call: 'revoke' | 'revokeAll', exchange: () => Promise<Exchange> | Exchange): Promise<number> {
    const started = performance.now()
    let attempts = 0
    try {
      const done = await exchange()
      attempts = done.attempts
      const revoked = toRevoked(done.result)
      onOutcome({ call, outcome: 'revoked', attempts, latencyMs: performance.now() - started })
      return revoked
    } catch (err) {
      if (err instanceof SessionValidatorError) {
        onOutcome(described({ call, outcome: 'failed', attempts, latencyMs: performance.now() - started }, err))
      }
      throw err
    }
  }

  return {
    async validate (token, call) {
      open()
      const started = performance.now()
      let result: Validation<E> = MALFORMED
      let attempts = 0
      if (isWellFormedToken(token)) {
        const done = await transport.post('/sessions/validate', { token }, call)
        result = toValidation<E>(done.result)
        attempts = done.attempts
      }
      const info: OutcomeInfo = { call: 'validate', outcome: result.outcome, attempts, latencyMs: performance.now() - started }
      onOutcome(result.outcome === 'valid' ? info : described(info, result))
      return result
    },
    async revoke (target, call) {
      open()
      // No session has a malformed token: nothing to revoke, nothing to ask.
      if ('token' in target && !isWellFormedToken(target.token)) return await revoking('revoke', () => ({ result: { status: 200, body: { revoked: 0 } }, attempts: 0 }))
      return await revoking('revoke', () => transport.post('/sessions/revoke', target, call))
    },
    async revokeAll (userId, call = {}) {
      open()
      const { keep, ...rest } = call
      const payload = keep === undefined ? {} : { keep }
      return await revoking('revokeAll', () => transport.post(`/users/${encodeURIComponent(userId)}/sessions/revoke`, payload, rest))
    },
    async close () {
      closed = true
      await transport.close()
    }
  }
}
