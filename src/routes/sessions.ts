import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError } from '../errors.js'
import { hashToken, isWellFormedToken } from '../token.js'
import type { SessionRecord } from '../sessions/session-record.js'
import type { SessionService } from '../sessions/session-service.js'
import type { Metrics } from '../metrics.js'
import { errorResponses, invalidResponse, revokedResponse, validResponse } from './schemas.js'

const BODY_LIMIT = 4096
const BEARER = /^Bearer +(\S+) *$/i
const TOKEN_RULE = 'token must be 1-512 visible ASCII characters (0x21-0x7E)'

interface TokenBody { token?: unknown }
interface RevokeBody { token?: unknown, sessionId?: string }

function iso (ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString()
}

function present (record: SessionRecord) {
  return {
    valid: true,
    session: {
      id: record.id,
      userId: record.userId,
      expiresAt: iso(record.expiresAt),
      createdAt: iso(record.createdAt),
      lastActivityAt: iso(record.lastActivityAt),
      ipAddress: record.ipAddress,
      userAgent: record.userAgent
    },
    user: {
      id: record.userId,
      email: record.email,
      firstName: record.firstName,
      lastName: record.lastName,
      username: record.username
    }
  }
}

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
  const match = BEARER.exec(header)
  if (match === null) throw new BadRequestError('the Authorization header must be "Bearer <token>"')
  const token = match[1]
  if (!isWellFormedToken(token)) throw new BadRequestError(TOKEN_RULE)
  return token
}

const optionalTokenBody = {
  type: 'object',
  properties: { token: { type: 'string' } },
  additionalProperties: false
} as const

export function sessionRoutes (service: SessionService, metrics: Metrics) {
  const duration = metrics.validationDuration
  // Label children bound once: no label lookup per request. Only a valid
  // answer can come from the cache (unknown tokens are never cached).
  const counted = {
    valid: { hit: metrics.validations.labels('valid', 'cache'), miss: metrics.validations.labels('valid', 'database') },
    not_found: metrics.validations.labels('not_found', 'database'),
    expired: metrics.validations.labels('expired', 'database')
  }
  const failed = metrics.validations.labels('error', 'none')

  return async function (app: FastifyInstance) {
    app.post<{ Body: TokenBody | undefined }>('/sessions/validate', {
      bodyLimit: BODY_LIMIT,
      // A Bearer-only call has no body at all; the schema still checks any body sent.
      preValidation: async (request) => { request.body ??= {} },
      schema: {
        operationId: 'validateSession',
        summary: 'Is this session token valid, and whose is it?',
        body: optionalTokenBody,
        headers: { type: 'object', properties: { authorization: { type: 'string' } } },
        response: { 200: validResponse, 401: invalidResponse, ...errorResponses }
      }
    }, async (request, reply: FastifyReply) => {
      const token = tokenOf(request)
      const start = performance.now()
      let result
      try {
        result = await service.validate(hashToken(token))
      } catch (err) {
        failed.inc()
        throw err
      } finally {
        duration.observe((performance.now() - start) / 1000)
      }
      reply.header('x-session-cache', result.cache)
      if (result.status === 'valid') {
        (result.cache === 'hit' ? counted.valid.hit : counted.valid.miss).inc()
        return present(result.record)
      }
      counted[result.status].inc()
      reply.code(401)
      return { valid: false, reason: result.status }
    })

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

    app.post<{ Params: { userId: string } }>('/users/:userId/sessions/revoke', {
      bodyLimit: BODY_LIMIT,
      schema: {
        operationId: 'revokeUserSessions',
        summary: 'Revoke every session of a user',
        params: {
          type: 'object',
          properties: { userId: { type: 'string', format: 'uuid' } },
          required: ['userId']
        },
        response: { 200: revokedResponse, ...errorResponses }
      }
    }, async (request) => {
      return { revoked: await service.revoke({ userId: request.params.userId.toLowerCase() }) }
    })
  }
}
