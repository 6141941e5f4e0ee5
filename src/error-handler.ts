// The one error handler: status, Retry-After, and a message that never carries
// a driver's words.
import { STATUS_CODES } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { UNAVAILABLE_MESSAGE } from './errors.js'

// Never the driver's words in a 5xx: they can carry host:port or a query.
const GENERIC_5XX: Record<number, string> = {
  503: UNAVAILABLE_MESSAGE
}

type HandledError = Error & { statusCode?: number, code?: string, retryAfter?: number }

export function errorHandler (err: HandledError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const statusCode = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
  const error = STATUS_CODES[statusCode] ?? 'Error'
  if (statusCode >= 500) {
    // A 503 is a dependency away: its cause is logged once per outage where
    // it is met (failureLog), and each answer is counted; a line per answer
    // would bury the log. Anything else is a bug: one line each.
    if (statusCode === 503) reply.header('retry-after', '1')
    else request.log.error({ code: err.code ?? err.name }, 'request failed')
    return reply.code(statusCode).send({ statusCode, code: err.code, error, message: GENERIC_5XX[statusCode] ?? error })
  }
  if (statusCode === 429 && err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
  // JSON.parse's message quotes the input, which may be a token.
  const message = err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError
    ? 'Body is not valid JSON'
    : err.message
  return reply.code(statusCode).send({ statusCode, code: err.code, error, message })
}
