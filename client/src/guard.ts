// What the framework adapters (Fastify, Express) share: the answers they send,
// the signal that ends a check when the caller's client goes away, and the
// accessor that hands a route its session without `!` or a cast.
import type { ServerResponse } from 'node:http'
import type { Auth } from './types.js'

export const UNAUTHORIZED = { statusCode: 401, error: 'Unauthorized', message: 'A valid session is required' }
export const UNAVAILABLE = { statusCode: 503, error: 'Service Unavailable', message: 'The session could not be checked; retry shortly' }

/**
 * Aborts when the response closes before it was ended: the caller gave up.
 * (The request's own 'close' fires once its body has been read, and HTTP/2
 * marks a cancelled stream finished: `writableEnded` tells them apart.)
 * `done()` stops listening.
 */
export function disconnectSignal (res: ServerResponse): { signal: AbortSignal, done: () => void } {
  const controller = new AbortController()
  const onClose = () => { if (!res.writableEnded) controller.abort() }
  res.once('close', onClose)
  return { signal: controller.signal, done: () => { res.removeListener('close', onClose) } }
}

/**
 * The request's session, once `requireSession` let it through; a route
 * without that guard is a bug, and this says so (it throws) rather than
 * handing it `null`.
 */
export function authOf (request: { auth?: Auth | null | undefined }): Auth {
  const auth = request.auth
  if (auth === null || auth === undefined) {
    throw new Error('authOf: this request has no session; is requireSession among its route\'s preHandlers (Fastify) or middleware (Express)?')
  }
  return auth
}
