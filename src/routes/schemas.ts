// Route schemas: they validate input, drive the fast serializer and feed the
// OpenAPI document. Nullable values are `null`, never absent.
const nullableString = { type: ['string', 'null'] } as const
const isoTime = { type: 'string', format: 'date-time' } as const

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

export const validResponse = {
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

export const invalidResponse = {
  type: 'object',
  properties: {
    valid: { type: 'boolean', const: false },
    reason: { type: 'string', enum: ['not_found', 'expired'] }
  },
  required: ['valid', 'reason']
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
