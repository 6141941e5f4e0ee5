import type { FastifyInstance } from 'fastify'
import type { TestDatabase } from './postgres.js'
import { createSession, createUser } from './fixtures.js'
import { validate } from './app.js'

// A little of everything the service answers, so that every labelled series
// a scrape can show has been touched at least once.
export async function driveTraffic (app: FastifyInstance, db: TestDatabase): Promise<void> {
  const userId = await createUser(db.sql)
  const live = await createSession(db.sql, userId)
  const expired = await createSession(db.sql, userId, { expiresInMs: -1000 })
  const other = await createSession(db.sql, userId)
  await validate(app, live.token) // miss
  await validate(app, live.token) // hit
  await validate(app, expired.token)
  await validate(app, 'never-issued-token')
  await app.inject({ method: 'POST', url: '/sessions/validate', payload: {} })
  await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: live.token } })
  await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { sessionId: other.id } })
  await app.inject({ method: 'POST', url: `/users/${userId}/sessions/revoke` })
  for (const url of ['/healthz', '/readyz', '/healthz/redis']) await app.inject({ method: 'GET', url })
}
