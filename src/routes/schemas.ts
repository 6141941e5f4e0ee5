// Route schemas: they validate input, drive the fast serializer and feed the
// OpenAPI document. Nullable values are `null`, never absent.
import type { ExtraFields } from '../config.js'
import { extraProperties } from '../sessions/extra-fields.js'

const nullableString = { type: ['string', 'null'] } as const
const isoTime = { type: 'string', format: 'date-time' } as const

/** The largest body a session route accepts: a token or an id, with room to spare. */
export const BODY_LIMIT = 4096

export const errorResponse = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' }
  },
  required: ['statusCode', 'error', 'message']
} as const

const validResponse = {
  type: 'object',
  properties: {
    valid: { type: 'boolean', const: true },
    session: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        userId: { type: 'string' },
        expiresAt: isoTime,
        createdAt: isoTime,
        lastActivityAt: { type: ['string', 'null'], format: 'date-time' },
        ipAddress: nullableString,
        userAgent: nullableString
      },
      required: ['id', 'userId', 'expiresAt', 'createdAt', 'lastActivityAt', 'ipAddress', 'userAgent']
    },
    user: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        email: { type: 'string' },
        firstName: nullableString,
        lastName: nullableString,
        username: nullableString
      },
      required: ['id', 'email', 'firstName', 'lastName', 'username']
    }
  },
  required: ['valid', 'session', 'user']
} as const

// With the operator's extra fields, typed, in session and user.
export function validResponseFor (fields: ExtraFields) {
  if (fields.session.length === 0 && fields.user.length === 0) return validResponse
  const { session, user } = validResponse.properties
  return {
    ...validResponse,
    properties: {
      ...validResponse.properties,
      session: { ...session, properties: { ...session.properties, ...extraProperties(fields.session) }, required: [...session.required, ...fields.session.map(f => f.name)] },
      user: { ...user, properties: { ...user.properties, ...extraProperties(fields.user) }, required: [...user.required, ...fields.user.map(f => f.name)] }
    }
  }
}

export const invalidResponse = {
  type: 'object',
  properties: {
    valid: { type: 'boolean', const: false },
    reason: {
      type: 'string',
      enum: ['not_found', 'expired', 'idle'],
      description: 'not_found: no such session (never issued, revoked, deleted); expired: past expires_at; idle: unused for longer than the idle timeout (only when SESSION_IDLE_TIMEOUT_SECONDS is set)'
    }
  },
  required: ['valid', 'reason']
} as const

export const sessionListResponse = {
  type: 'object',
  properties: {
    sessions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          createdAt: isoTime,
          lastActivityAt: { type: ['string', 'null'], format: 'date-time' },
          expiresAt: isoTime,
          ipAddress: nullableString,
          userAgent: nullableString
        },
        required: ['id', 'createdAt', 'lastActivityAt', 'expiresAt', 'ipAddress', 'userAgent']
      }
    },
    next: { type: ['string', 'null'], description: 'pass as ?cursor= for the next page; null on the last one' }
  },
  required: ['sessions', 'next']
} as const

export const revokedResponse = {
  type: 'object',
  properties: { revoked: { type: 'integer', minimum: 0 } },
  required: ['revoked']
} as const

// Node's HTTP server refuses headers over its 16 KiB limit before any route
// runs, on every route (Fastify's client-error handler writes this shape).
export const headersTooLarge = { ...errorResponse, description: 'Request headers over 16 KiB' } as const

export const errorResponses = {
  400: errorResponse,
  403: errorResponse,
  413: errorResponse,
  415: errorResponse,
  429: errorResponse,
  431: headersTooLarge,
  500: errorResponse,
  503: errorResponse
} as const
