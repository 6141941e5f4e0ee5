// Fastify plugin: `requireSession`, a preHandler that sets `request.auth` for
// a live session, answers 401 only when the service said the session is not
// valid, and 503 with Retry-After when the answer could not be known.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { authenticate, type AuthenticateOptions } from './authenticate.js'
import { createSessionClient, type SessionClient, type SessionClientOptions } from './client.js'
import { retryAfterSeconds } from './retry-after.js'
import type { Session, User } from './types.js'

export interface SessionAuthOptions extends Omit<AuthenticateOptions, 'signal'> {
  /** A client of your own, or the options to create one (closed with the server). */
  client: SessionClient | SessionClientOptions
}

export interface Auth {
  session: Session
  user: User
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's live session and user, once `requireSession` let the request through; else null. */
    auth: Auth | null
  }
  interface FastifyInstance {
    /** preHandler: 401 when the session is not valid, 503 when it could not be checked. */
    requireSession: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>
  }
}

const UNAUTHORIZED = { statusCode: 401, error: 'Unauthorized', message: 'A valid session is required' }
const UNAVAILABLE = { statusCode: 503, error: 'Service Unavailable', message: 'The session could not be checked; retry shortly' }

async function sessionAuth (fastify: FastifyInstance, options: SessionAuthOptions): Promise<void> {
  const { client: given, ...authOptions } = options
  const owned = !('validate' in given)
  const client = owned ? createSessionClient(given) : given
  if (owned) fastify.addHook('onClose', async () => { await client.close() })

  fastify.decorateRequest('auth', null)
  fastify.decorate('requireSession', async function requireSession (request: FastifyRequest, reply: FastifyReply) {
    const result = await authenticate(client, request, authOptions)
    if (result.outcome === 'valid') {
      request.auth = { session: result.session, user: result.user }
      return undefined
    }
    if (result.outcome === 'invalid') {
      return reply.code(401).header('www-authenticate', 'Bearer').send(UNAUTHORIZED)
    }
    // a wrong API key does not heal by retrying: someone has to fix the deployment
    request.log[result.reason === 'forbidden' ? 'error' : 'warn']({ reason: result.reason, status: result.status }, 'session could not be checked')
    return reply.code(503).header('retry-after', retryAfterSeconds(result.retryAfterMs)).send(UNAVAILABLE)
  })
}

// What fastify-plugin would do, without the dependency: not encapsulated, so
// the decorations reach the routes of the scope it is registered in.
export const sessionAuthPlugin: FastifyPluginAsync<SessionAuthOptions> = Object.assign(sessionAuth, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: '@session-validator/client',
  [Symbol.for('plugin-meta')]: { name: '@session-validator/client', fastify: '5.x' }
})

export default sessionAuthPlugin
