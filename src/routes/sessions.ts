// POST /sessions/validate and POST /sessions/revoke.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError } from '../errors.js'
import { bearerCredential, hashToken, isWellFormedToken, TOKEN_RULE } from '../token.js'
import type { SessionRecord } from '../sessions/session-record.js'
import type { SessionService } from '../sessions/session-service.js'
import { NO_EXTRA_FIELDS, type ExtraFields } from '../sessions/extra-fields.js'
import type { CountedValidation } from './counted-validation.js'
import { errorResponses, invalidResponse, revokedResponse, validResponseFor } from './schemas.js'

const BODY_LIMIT = 4096

interface TokenBody { token?: unknown }
interface RevokeBody { token?: unknown, sessionId?: string }

function iso (ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString()
}

// The answer of a valid session; extra fields are laid out once, by name.
function presenter (fields: ExtraFields) {
  const sessionNames = fields.session.map(f => f.name)
  const userNames = fields.user.map(f => f.name)
  return function present (record: SessionRecord) {
    const session: Record<string, unknown> = {
      id: record.id,
      userId: record.userId,
      expiresAt: iso(record.expiresAt),
      createdAt: iso(record.createdAt),
      lastActivityAt: iso(record.lastActivityAt),
      ipAddress: record.ipAddress,
      userAgent: record.userAgent
    }
    const user: Record<string, unknown> = {
      id: record.userId,
      email: record.email,
      firstName: record.firstName,
      lastName: record.lastName,
      username: record.username
    }
    for (let i = 0; i < sessionNames.length; i++) session[sessionNames[i]!] = record.extra[i] ?? null
    for (let i = 0; i < userNames.length; i++) user[userNames[i]!] = record.extra[sessionNames.length + i] ?? null
    return { valid: true, session, user }
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
  const token = bearerCredential(header)
  if (token === undefined) throw new BadRequestError('the Authorization header must be "Bearer <token>"')
  if (!isWellFormedToken(token)) throw new BadRequestError(TOKEN_RULE)
  return token
}

const optionalTokenBody = {
  type: 'object',
  properties: { token: { type: 'string' } },
  additionalProperties: false
} as const

export function sessionRoutes (service: SessionService, validate: CountedValidation, fields: ExtraFields = NO_EXTRA_FIELDS) {
  const present = presenter(fields)
  // A record from memory is the same object on every hit: its answer is
  // serialized once, not per request.
  const serialized = new WeakMap<SessionRecord, string>()

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
        response: { 200: validResponseFor(fields), 401: invalidResponse, ...errorResponses }
      }
    }, async (request, reply: FastifyReply) => {
      const result = await validate(hashToken(tokenOf(request)), reply)
      if (result.status === 'valid') {
        if (result.tier !== 'local') return present(result.record)
        let body = serialized.get(result.record)
        if (body === undefined) serialized.set(result.record, body = reply.serialize(present(result.record)) as string)
        return reply.type('application/json; charset=utf-8').send(body)
      }
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
  }
}
