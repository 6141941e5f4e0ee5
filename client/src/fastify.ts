// Fastify plugin: `requireSession`, a preHandler that sets `request.auth` for
// a live session, answers 401 only when the service said the session is not
// valid, and 503 with Retry-After when the answer could not be known. The
// check ends when the caller's client goes away.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { authenticate, type AuthenticateOptions } from './authenticate.js'
import { createSessionClient, type SessionClient, type SessionClientOptions } from './client.js'
import { disconnectSignal, UNAUTHORIZED, UNAVAILABLE } from './guard.js'
import { retryAfterSeconds } from './retry-after.js'
import type { Auth, Extras, Unavailable } from './types.js'

export { authOf } from './guard.js'
export type { Auth, AuthExtras } from './types.js'

export interface SessionAuthOptions extends Omit<AuthenticateOptions, 'signal'> {
  /** A client of your own, or the options to create one (closed with the server). */
  client: SessionClient<Extras> | SessionClientOptions
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The caller's live session and user, once `requireSession` let the
     * request through; else null. `authOf(request)` hands it over non-null.
     */
    auth: Auth | null
  }
  interface FastifyInstance {
    /** preHandler: 401 when the session is not valid, 503 when it could not be checked. */
    requireSession: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>
  }
}

// Retrying does not heal these: someone has to fix the deployment (the API
// key, the URL, the certificate), so they are logged as errors.
const MISCONFIGURED = new Set<Unavailable['reason']>(['forbidden', 'dns', 'tls'])

function logLevelOf (result: Unavailable): 'error' | 'warn' {
  return MISCONFIGURED.has(result.reason) ? 'error' : 'warn'
}

async function sessionAuth (fastify: FastifyInstance, options: SessionAuthOptions): Promise<void> {
  const { client: given, ...authOptions } = options
  const owned = !('validate' in given)
  const client = owned ? createSessionClient(given) : given
  if (owned) fastify.addHook('onClose', async () => { await client.close() })

  fastify.decorateRequest('auth', null)
  fastify.decorate('requireSession', async function requireSession (request: FastifyRequest, reply: FastifyReply) {
    // Not Fastify's request.signal: it fires as soon as a request's body has
    // been read (fastify/fastify#6725), which would end every POST's check.
    const { signal, done } = disconnectSignal(reply.raw)
    const result = await authenticate(client, request, { ...authOptions, signal }).finally(done)
    if (result.outcome === 'valid') {
      request.auth = { session: result.session, user: result.user }
      return undefined
    }
    if (result.outcome === 'invalid') {
      return reply.code(401).header('www-authenticate', 'Bearer').send(UNAUTHORIZED)
    }
    // what a log line may say: never the token (pino leaves out what is undefined)
    request.log[logLevelOf(result)]({ reason: result.reason, status: result.status, cause: result.cause }, 'session could not be checked')
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
