// A user's sessions: the list ("your devices"), revoke-all, and revoke all
// but one ("sign out everywhere else").
import type { FastifyInstance } from 'fastify'
import { BadRequestError } from '../errors.js'
import { hashToken, isWellFormedToken, TOKEN_RULE } from '../token.js'
import type { SessionService } from '../sessions/session-service.js'
import type { ListPosition } from '../sessions/session-store.js'
import { BODY_LIMIT, errorResponses, revokedResponse, sessionListResponse } from './schemas.js'

const PAGE_MAX = 100

const userParams = {
  type: 'object',
  properties: { userId: { type: 'string', format: 'uuid' } },
  required: ['userId']
} as const

interface KeepBody { keep?: { token?: string, sessionId?: string } }

const iso = (ms: number | null) => ms === null ? null : new Date(ms).toISOString()

// The cursor is opaque to callers: the last session's exact activity and id.
function encodeCursor (p: ListPosition): string {
  return Buffer.from(`${p.activityUs}.${p.id}`).toString('base64url')
}

function decodeCursor (cursor: string): ListPosition {
  const match = /^(\d{1,19})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(Buffer.from(cursor, 'base64url').toString())
  if (match === null) throw new BadRequestError('cursor is not one this service gave out')
  return { activityUs: match[1]!, id: match[2]! }
}

export function userSessionRoutes (service: SessionService) {
  return async function (app: FastifyInstance) {
    app.get<{ Params: { userId: string }, Querystring: { limit?: string, cursor?: string } }>('/users/:userId/sessions', {
      schema: {
        summary: 'The user\'s live sessions, newest activity first (never a token or its hash)',
        operationId: 'listUserSessions',
        params: userParams,
        querystring: {
          type: 'object',
          properties: {
            // a string: query strings are not coerced (no type coercion anywhere)
            limit: { type: 'string', pattern: '^(100|[1-9][0-9]?)$', description: `sessions per page, 1-${PAGE_MAX} (default 20)` },
            cursor: { type: 'string', maxLength: 200 }
          },
          additionalProperties: false
        },
        response: { 200: sessionListResponse, ...errorResponses }
      }
    }, async (request) => {
      const limit = request.query.limit === undefined ? 20 : Number(request.query.limit)
      const cursor = request.query.cursor
      const page = await service.listSessions(request.params.userId.toLowerCase(), limit + 1, cursor === undefined ? undefined : decodeCursor(cursor))
      const more = page.length > limit
      const sessions = more ? page.slice(0, limit) : page
      return {
        sessions: sessions.map(s => ({
          id: s.id,
          createdAt: iso(s.createdAt),
          lastActivityAt: iso(s.lastActivityAt),
          expiresAt: iso(s.expiresAt),
          ipAddress: s.ipAddress,
          userAgent: s.userAgent
        })),
        next: more ? encodeCursor(sessions.at(-1)!) : null
      }
    })

    app.post<{ Params: { userId: string }, Body: KeepBody | undefined }>('/users/:userId/sessions/revoke', {
      bodyLimit: BODY_LIMIT,
      // the body is optional (revoke-all sends none); any body sent is checked
      preValidation: async (request) => { request.body ??= {} },
      schema: {
        summary: 'Revoke every session of a user, or all but the one in `keep` ("sign out everywhere else")',
        operationId: 'revokeUserSessions',
        params: userParams,
        body: {
          type: 'object',
          properties: {
            keep: {
              type: 'object',
              properties: { token: { type: 'string' }, sessionId: { type: 'string', format: 'uuid' } },
              additionalProperties: false,
              oneOf: [{ required: ['token'] }, { required: ['sessionId'] }]
            }
          },
          additionalProperties: false
        },
        response: { 200: revokedResponse, ...errorResponses }
      }
    }, async (request) => {
      const userId = request.params.userId.toLowerCase()
      const keep = request.body?.keep
      if (keep === undefined) return { revoked: await service.revoke({ userId }) }
      if (keep.token !== undefined) {
        if (!isWellFormedToken(keep.token)) throw new BadRequestError(TOKEN_RULE)
        return { revoked: await service.revoke({ userId, keep: { digest: hashToken(keep.token) } }) }
      }
      return { revoked: await service.revoke({ userId, keep: { sessionId: keep.sessionId!.toLowerCase() } }) }
    })
  }
}
