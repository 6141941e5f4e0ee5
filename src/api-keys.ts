// The API-key guard: routes registered in a guarded scope need `x-api-key`.
import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { ForbiddenError } from './errors.js'
import { sha256 } from './sha256.js'

// Keys are held only as SHA-256 digests and compared in constant time; every
// key is compared, so the time taken does not say which one nearly matched.
export function apiKeyGuard (scope: FastifyInstance, keys: readonly string[]): void {
  if (keys.length === 0) return
  const digests = keys.map(sha256)
  // Each route of the scope says so in the OpenAPI document: what the document
  // declares is what the guard enforces, for routes added later too.
  scope.addHook('onRoute', route => {
    route.schema = { ...route.schema, security: [{ apiKey: [] }] }
  })
  // callback style: an async hook would cost a promise on every request
  scope.addHook('onRequest', (request, _reply, done) => {
    const given = request.headers['x-api-key']
    if (typeof given !== 'string') return done(new ForbiddenError())
    const candidate = sha256(given)
    let ok = false
    for (const d of digests) ok = timingSafeEqual(d, candidate) || ok
    done(ok ? undefined : new ForbiddenError())
  })
}
