// GET/HEAD /forward-auth: the session check reverse proxies ask for.
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify'
import type { ForwardAuthConfig } from '../config.js'
import { cookieValue } from '../cookie.js'
import { headerValue } from '../header-value.js'
import { bearerCredential, isWellFormedToken, tokenKey } from '../token.js'
import type { MemoryKey } from '../sessions/local-cache.js'
import type { CountedValidation } from './counted-validation.js'
import { errorResponses } from './schemas.js'

// GET /forward-auth for reverse proxies (nginx auth_request, Caddy forward_auth,
// Traefik forwardAuth, Envoy ext_authz): 200 with identity headers, 401, or a
// status that says "retry" (503, 429). A proxy can act on no 400, so a token
// that is malformed is simply not valid.

const ROUTE = '/forward-auth'
// Envoy's HTTP ext_authz keeps the client's method and puts the client's path
// after its path_prefix; only GET (and the HEAD Fastify adds) is documented.
const OTHER_METHODS: HTTPMethods[] = ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
// RFC 6750 §3: no error code when no credential came at all.
const NO_TOKEN = 'Bearer'
const BAD_TOKEN = 'Bearer error="invalid_token"'

const noBody = (description: string, headers: Record<string, { type: 'string', description: string }>) =>
  ({ type: 'null', description, headers } as const)

interface Identity { session: { id: string }, user: { id: string, email: string, username: string | null } }

export function forwardAuthRoutes (validation: CountedValidation, config: ForwardAuthConfig) {
  const { cookie, loginUrl, headers: names } = config

  // Bearer first; any other Authorization scheme belongs to the upstream app.
  function tokenOf (request: FastifyRequest): string | undefined {
    const authorization = request.headers.authorization
    if (authorization !== undefined) {
      const token = bearerCredential(authorization)
      if (token !== undefined) return token
    }
    const header = request.headers.cookie
    return cookie === undefined || header === undefined ? undefined : cookieValue(header, cookie)
  }

  function deny (reply: FastifyReply, challenge: string): FastifyReply {
    reply.code(401).header('www-authenticate', challenge)
    if (loginUrl !== undefined) reply.header('x-forward-auth-login', loginUrl)
    return reply.send()
  }

  // Every header, always (empty when null): a proxy that copies a header
  // the answer lacks may pass the client's own, or a placeholder, upstream.
  function allow (reply: FastifyReply, answer: string): FastifyReply {
    const { session, user } = JSON.parse(answer) as Identity
    reply.header(names.user, user.id)
    reply.header(names.email, headerValue(user.email))
    reply.header(names.username, headerValue(user.username))
    reply.header(names.sessionId, session.id)
    return reply.code(200).send()
  }

  async function answerLater (key: MemoryKey, reply: FastifyReply): Promise<FastifyReply> {
    const result = await validation.validate(key, reply)
    return result.status === 'valid' ? allow(reply, result.answer) : deny(reply, BAD_TOKEN)
  }

  // Synchronous while the answer is in memory, as POST /sessions/validate.
  function handler (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> | undefined {
    // an answer about one user's session is never to be cached by a proxy
    reply.header('cache-control', 'no-store')
    const token = tokenOf(request)
    if (token === undefined || !isWellFormedToken(token)) {
      deny(reply, token === undefined ? NO_TOKEN : BAD_TOKEN)
      return undefined
    }
    const key = tokenKey(token)
    const answer = validation.fromMemory(key, reply)
    if (answer === undefined) return answerLater(key, reply)
    allow(reply, answer)
    return undefined
  }

  const identity = {
    [names.user]: { type: 'string', description: 'the user id' },
    [names.email]: { type: 'string', description: 'the user\'s email (percent-encoded UTF-8 unless plain visible ASCII)' },
    [names.username]: { type: 'string', description: 'the username, empty when the user has none (encoded like the email)' },
    [names.sessionId]: { type: 'string', description: 'the session id' },
    'x-session-cache': { type: 'string', description: 'hit, miss or bypass, as for POST /sessions/validate' }
  } as const
  const schema = {
    operationId: 'forwardAuth',
    summary: 'Forward-auth check for reverse proxies: is the request\'s session valid?',
    description: `Token from Authorization: Bearer${cookie === undefined ? '' : ` or the ${cookie} cookie`}. Also answers HEAD, ` +
      `every other method and any path under ${ROUTE}/ (Envoy ext_authz keeps the client's method and path).`,
    response: {
      200: noBody('valid: identity headers, empty body', identity),
      401: noBody('no token, a malformed one, or not a valid session', {
        'www-authenticate': { type: 'string', description: 'Bearer, with error="invalid_token" when a token was sent' }
      }),
      ...errorResponses
    }
  }

  return async function (app: FastifyInstance) {
    // No body is ever read: Envoy may send its method's content type with none.
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })
    app.get(ROUTE, { schema }, handler)
    app.route({ method: OTHER_METHODS, url: ROUTE, schema: { hide: true }, handler })
    app.route({ method: ['GET', ...OTHER_METHODS], url: `${ROUTE}/*`, schema: { hide: true }, handler })
  }
}
