// Express (4 or 5; Connect, or plain node:http) middleware: `requireSession`
// sets `req.auth` for a live session, answers 401 only when the service said
// the session is not valid, and 503 with Retry-After when the answer could not
// be known. The check ends when the caller's client goes away.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { authenticate, type AuthenticateOptions } from './authenticate.js'
import type { SessionClient } from './client.js'
import { disconnectSignal, UNAUTHORIZED, UNAVAILABLE } from './guard.js'
import { retryAfterSeconds } from './retry-after.js'
import type { Auth, Extras } from './types.js'

export { authOf } from './guard.js'
export type { Auth, AuthExtras } from './types.js'

declare global {
  // Express's own way to type what middleware adds to a request
  namespace Express {
    interface Request {
      /** The caller's live session and user, once `requireSession` let the request through. `authOf(req)` hands it over non-null. */
      auth?: Auth | undefined
    }
  }
}

/** `cookie`, and per-call options for every check. Log the 503s with the client's `onOutcome`. */
export type RequireSessionOptions = Omit<AuthenticateOptions, 'signal'>

type Next = (err?: unknown) => void

function send (res: ServerResponse, status: number, headers: Record<string, string>, body: object): void {
  res.statusCode = status
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
  res.setHeader('content-type', 'application/json; charset=utf-8')
  res.end(JSON.stringify(body))
}

/**
 * The middleware, for a client you made (and close). Routes after it see
 * `req.auth`; the others never run for a request it answered.
 */
export function requireSession (client: SessionClient<Extras>, options: RequireSessionOptions = {}) {
  return async function sessionGuard (req: IncomingMessage & { auth?: Auth | undefined }, res: ServerResponse, next: Next): Promise<void> {
    const { signal, done } = disconnectSignal(res)
    let result
    try {
      result = await authenticate(client, req, { ...options, signal })
    } catch (err) {
      // a closed client: the caller's bug, for Express's error handler
      next(err)
      return
    } finally {
      done()
    }
    if (result.outcome === 'valid') {
      req.auth = { session: result.session, user: result.user }
      next()
      return
    }
    if (result.outcome === 'invalid') {
      send(res, 401, { 'www-authenticate': 'Bearer' }, UNAUTHORIZED)
      return
    }
    send(res, 503, { 'retry-after': retryAfterSeconds(result.retryAfterMs) }, UNAVAILABLE)
  }
}
