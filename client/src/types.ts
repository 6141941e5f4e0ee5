// What the client hands back: the service's session and user, and the three
// outcomes of a validation. Session and User are checked against the
// service's OpenAPI document by client/test/openapi-types.assert.ts.

/** A live session, as `POST /sessions/validate` answers it. Times are ISO-8601 strings. */
export interface Session {
  id: string
  userId: string
  expiresAt: string
  createdAt: string
  lastActivityAt: string | null
  ipAddress: string | null
  userAgent: string | null
}

/** The session's user. */
export interface User {
  id: string
  email: string
  firstName: string | null
  lastName: string | null
  username: string | null
}

/**
 * Extra columns an operator configures (camelCase) appear on the session or
 * the user; declare them here to have them typed: `createSessionClient<{ session: { activeOrgId: string | null } }>(...)`.
 */
export interface Extras {
  session?: object
  user?: object
}

type Extra<E extends Extras, K extends keyof Extras> = E[K] extends object ? E[K] : unknown

/** The answer is known: the session is live. */
export interface Valid<E extends Extras = Extras> {
  outcome: 'valid'
  session: Session & Extra<E, 'session'>
  user: User & Extra<E, 'user'>
}

/** The reasons the client knows: the service's (client/src/openapi.ts) and `malformed`. */
export type KnownInvalidReason = 'not_found' | 'expired' | 'idle' | 'malformed'

/**
 * The answer is known: there is no live session for this token. `malformed`:
 * not 1-512 visible ASCII characters, so no session can have it. A reason the
 * service adds later arrives as it is, still a definitive invalid: hence any
 * string, with the known ones offered by editors.
 */
export type InvalidReason = KnownInvalidReason | (string & {})

export interface Invalid {
  outcome: 'invalid'
  reason: InvalidReason
}

/**
 * The answer could not be known. Never a logout: retry later, or fail the
 * request with a 503.
 * - `timeout`: no answer within the call's deadline
 * - `connection`: the connection was refused, reset or closed (`cause` says which)
 * - `dns`: the host name did not resolve (`ENOTFOUND`: a wrong URL, not retried; `EAI_AGAIN`: retried)
 * - `tls`: the TLS handshake failed: a certificate that does not verify or
 *   does not name the host, or TLS spoken to a port that does not (not retried)
 * - `rate_limited`: 429 from the service, still there when the deadline left no room to wait
 * - `service_unavailable`: 503 (or 502/504) from the service: Postgres cannot be asked
 * - `forbidden`: 403, the API key is missing or wrong: a deployment error, not retried
 * - `unexpected_response`: any other status, or a body not of the service's shape
 * - `aborted`: the caller's AbortSignal fired
 */
export type UnavailableReason =
  | 'timeout'
  | 'connection'
  | 'dns'
  | 'tls'
  | 'rate_limited'
  | 'service_unavailable'
  | 'forbidden'
  | 'unexpected_response'
  | 'aborted'

export interface Unavailable {
  outcome: 'unavailable'
  reason: UnavailableReason
  /** When the service said when to come back (Retry-After), in milliseconds. */
  retryAfterMs?: number
  /** The HTTP status of the last answer, when there was one. */
  status?: number
  /** Why the request failed, when no answer came: an error code such as `ECONNREFUSED`, `ENOTFOUND`, `ERR_TLS_CERT_ALTNAME_INVALID`. */
  cause?: string
}

export type Validation<E extends Extras = Extras> = Valid<E> | Invalid | Unavailable

/** What `revoke` takes: a token, or a session id (uuid). */
export type SessionTarget = { token: string } | { sessionId: string }

/** Per-call options. */
export interface CallOptions {
  /**
   * The deadline of this call, retries included, in milliseconds (any finite
   * number: `deadline - performance.now()` is fine; 0 or less answers
   * `unavailable` / `timeout` at once, without a request).
   */
  timeoutMs?: number | undefined
  /** Ends the call, and its waits, when it fires (e.g. the incoming request's). */
  signal?: AbortSignal | undefined
  /** Sent with this call's requests (`traceparent`, `x-request-id`, ...); the client's own headers win. */
  headers?: Readonly<Record<string, string>> | undefined
}

/**
 * A live session and its user, as the framework adapters hand them to routes.
 * Declare operator-configured extras once, for every adapter, by merging into
 * `AuthExtras`: `declare module '@session-validator/client' { interface AuthExtras { session: { activeOrgId: string | null } } }`.
 */
export interface Auth<E extends Extras = AuthExtras> {
  session: Valid<E>['session']
  user: Valid<E>['user']
}

// Empty here: callers fill it in through declaration merging.
export interface AuthExtras extends Extras {}
