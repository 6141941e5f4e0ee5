import type { FastifyInstance } from 'fastify'
import { freshDatabase, type TestDatabase } from './postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from './redis.js'
import { createSession, createUser } from './fixtures.js'
import { testApp, validate } from './app.js'
import { scrape } from './promql.js'
import { waitFor } from './ports.js'

interface Teardown { teardown(fn: () => unknown): void }

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

// A fresh database, a fresh prefix, an app, a little of every traffic, and the
// scrape that follows: what the deploy tests check their names against.
export async function scrapeAfterTraffic (t: Teardown): Promise<string> {
  const db = await freshDatabase(t)
  const redisUrl = await sharedRedisUrl()
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  // a session in use before the start: the warm-up after the first epoch
  // move takes its fill lease (the `lease` call) and writes it
  const recent = await createSession(db.sql, await createUser(db.sql))
  await db.sql`UPDATE platform.user_sessions SET last_activity_at = now() WHERE id = ${recent.id}`
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix })
  await waitFor('the warm-up to write the session in use', async () => /^session_cache_warmed_total 1$/m.test(await scrape(app)), 10_000, 50)
  await driveTraffic(app, db)
  return await scrape(app)
}
