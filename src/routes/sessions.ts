// POST /sessions/validate and POST /sessions/revoke.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError } from '../errors.js'
import { bearerCredential, hashToken, isWellFormedToken, TOKEN_RULE, tokenKey } from '../token.js'
import type { SessionService } from '../sessions/session-service.js'
import { NO_EXTRA_FIELDS, type ExtraFields } from '../config.js'
import type { MemoryKey } from '../sessions/local-cache.js'
import type { CountedValidation } from './counted-validation.js'
import { BODY_LIMIT, errorResponses, invalidResponse, revokedResponse, validResponseFor } from './schemas.js'

const JSON_TYPE = 'application/json; charset=utf-8'

interface TokenBody { token?: unknown }
interface RevokeBody { token?: unknown, sessionId?: string }

// The token comes in the body or in `Authorization: Bearer`, never both.
function tokenOf (request: FastifyRequest<{ Body: TokenBody | undefined }>): string {
  const header = request.headers.authorization
  const fromBody = request.body?.token
  if (header !== undefined && fromBody !== undefined) {
    throw new BadRequestError('send the token in the body or in the Authorization header, not both')
  }
  if (fromBody !== undefined) {
    if (!isWellFormedToken(fromBody)) throw new BadRequestError(TOKEN_RULE)
    return fromBody
  }
  if (header === undefined) throw new BadRequestError('a token is required, in {"token": "..."} or in Authorization: Bearer')
  const token = bearerCredential(header)
  if (token === undefined) throw new BadRequestError('the Authorization header must be "Bearer <token>"')
  if (!isWellFormedToken(token)) throw new BadRequestError(TOKEN_RULE)
  return token
}

// A Bearer-only call has no body at all (validated as null); the schema still
// checks any body sent. No hook to stand in an empty object: one less step
// on every request.
const optionalTokenBody = {
  type: ['object', 'null'],
  properties: { token: { type: 'string' } },
  additionalProperties: false
} as const

export function sessionRoutes (service: SessionService, validation: CountedValidation, fields: ExtraFields = NO_EXTRA_FIELDS) {
  // Past memory: Redis, then Postgres. Every valid answer is already JSON text.
  async function answerLater (key: MemoryKey, reply: FastifyReply): Promise<unknown> {
    const result = await validation.validate(key, reply)
    if (result.status === 'valid') return reply.type(JSON_TYPE).send(result.answer)
    reply.code(401)
    return { valid: false, reason: result.status }
  }

  // Synchronous while the answer is in memory: no promise, no serialization.
  function validateHandler (request: FastifyRequest<{ Body: TokenBody | undefined }>, reply: FastifyReply): Promise<unknown> | undefined {
    const key = tokenKey(tokenOf(request))
    const answer = validation.fromMemory(key, reply)
    if (answer === undefined) return answerLater(key, reply)
    reply.type(JSON_TYPE).send(answer)
    return undefined
  }

  return async function (app: FastifyInstance) {
    app.post<{ Body: TokenBody | undefined }>('/sessions/validate', {
      bodyLimit: BODY_LIMIT,
      schema: {
        operationId: 'validateSession',
        summary: 'Is this session token valid, and whose is it?',
        body: optionalTokenBody,
        headers: { type: 'object', properties: { authorization: { type: 'string' } } },
        response: { 200: validResponseFor(fields), 401: invalidResponse, ...errorResponses }
      }
    }, validateHandler)

    app.post<{ Body: RevokeBody }>('/sessions/revoke', {
      bodyLimit: BODY_LIMIT,
      schema: {
        operationId: 'revokeSession',
        summary: 'Revoke one session, by token or by session id',
        body: {
          type: 'object',
          properties: { token: { type: 'string' }, sessionId: { type: 'string', format: 'uuid' } },
          additionalProperties: false,
          oneOf: [{ required: ['token'] }, { required: ['sessionId'] }]
        },
        response: { 200: revokedResponse, ...errorResponses }
      }
    }, async (request) => {
      const { token, sessionId } = request.body
      if (token !== undefined) {
        if (!isWellFormedToken(token)) throw new BadRequestError(TOKEN_RULE)
        return { revoked: await service.revoke({ digest: hashToken(token) }) }
      }
      return { revoked: await service.revoke({ sessionId: sessionId!.toLowerCase() }) }
    })
  }
}
