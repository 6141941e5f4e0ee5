import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, ownRedis, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep, waitFor } from '../helpers/ports.js'

const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)

// Two instances on the same Redis and Postgres, as on Railway with replicas.
const a = await testApp(t, { databaseUrl: db.url, redisUrl, prefix })
const b = await testApp(t, { databaseUrl: db.url, redisUrl, prefix })

async function cachedOnBoth (token: string): Promise<void> {
  for (const { app } of [a, b]) {
    const first = await validate(app, token)
    if (first.statusCode !== 200) throw new Error(`expected 200, got ${first.statusCode}`)
  }
  const hit = await validate(b.app, token)
  if (hit.headers['x-session-cache'] !== 'hit') throw new Error('expected a hit')
}

// Polls until both instances reject; returns how long that took.
async function rejectedWithin (token: string, limitMs: number): Promise<number> {
  const start = Date.now()
  await waitFor('both instances to reject', async () =>
    (await validate(a.app, token)).statusCode === 401 && (await validate(b.app, token)).statusCode === 401, limitMs, 20)
  return Date.now() - start
}

t.test('revoke through A: B rejects at once', async t => {
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId)
  await cachedOnBoth(s.token)
  t.same((await a.app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })).json(), { revoked: 1 })
  t.equal((await validate(b.app, s.token)).statusCode, 401)
})

t.test('a row deleted with plain SQL is rejected by both within a second', async t => {
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId)
  await cachedOnBoth(s.token)
  await db.sql`DELETE FROM platform.user_sessions WHERE id = ${s.id}`
  const took = await rejectedWithin(s.token, 1000)
  t.ok(took < 1000, `rejected after ${took} ms`)
})

t.test('a user renamed in Postgres is answered with the new name within a second', async t => {
  const userId = await createUser(db.sql, { email: 'old@example.com', firstName: 'Old' })
  const s = await createSession(db.sql, userId)
  await cachedOnBoth(s.token)
  await db.sql`UPDATE platform.users SET email = 'new@example.com', first_name = 'New' WHERE id = ${userId}`
  const start = Date.now()
  await waitFor('the new name on both', async () => {
    for (const { app } of [a, b]) {
      const user = (await validate(app, s.token)).json().user
      if (user.email !== 'new@example.com' || user.firstName !== 'New') return false
    }
    return true
  }, 1000, 20)
  t.ok(Date.now() - start < 1000)
})

t.test('a user deleted in Postgres: every session of theirs is rejected within a second', async t => {
  const userId = await createUser(db.sql)
  const sessions = [await createSession(db.sql, userId), await createSession(db.sql, userId)]
  for (const s of sessions) await cachedOnBoth(s.token)
  await db.sql`DELETE FROM platform.users WHERE id = ${userId}`
  for (const s of sessions) t.ok(await rejectedWithin(s.token, 1000) < 1000)
})

t.test('an extended expires_at is seen', async t => {
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId, { expiresInMs: 60_000 })
  await cachedOnBoth(s.token)
  await db.sql`UPDATE platform.user_sessions SET expires_at = now() - interval '1 second' WHERE id = ${s.id}`
  await waitFor('both to answer expired', async () =>
    (await validate(a.app, s.token)).json().reason === 'expired' && (await validate(b.app, s.token)).json().reason === 'expired', 1000, 20)
  t.pass('expired on both')
})

t.test('a listener gap: a change made while every LISTEN connection is gone is replayed, and the cache stays warm', async t => {
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId)
  const kept = await createSession(db.sql, userId)
  await cachedOnBoth(s.token)
  await cachedOnBoth(kept.token)
  const epochBefore = a.app.sessions.epoch
  // Kill every listener from Postgres' side, so that no instance hears of the
  // delete: only the change log can save us.
  await db.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE application_name LIKE 'session-validator-listener %' AND datname = current_database()`
  await db.sql`DELETE FROM platform.user_sessions WHERE id = ${s.id}`
  await waitFor('both instances to resubscribe and catch up', async () => {
    await sleep(50)
    return a.app.coherence.sharedCopyable() && b.app.coherence.sharedCopyable()
  }, 5000)
  for (const { app } of [a, b]) t.equal((await validate(app, s.token)).statusCode, 401, 'the change made in the gap was replayed')
  t.equal(a.app.sessions.epoch, epochBefore, 'the epoch did not move')
  t.equal(b.app.sessions.epoch, epochBefore)
  const res = await validate(b.app, kept.token)
  t.equal(res.headers['x-session-cache'], 'hit', 'the cache stayed warm')
})

t.test('revocation while the circuit is open sticks once Redis is back', async t => {
  const redis = await ownRedis(t)
  const ownPrefix = freshPrefix()
  const inspect = inspector(t, redis.url)
  const env = { BREAKER_HALF_OPEN_AFTER_MS: '300', BREAKER_WINDOW_MS: '1000' }
  const c = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix: ownPrefix, env })
  const d = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix: ownPrefix, env })
  const userId = await createUser(db.sql)
  const byToken = await createSession(db.sql, userId)
  const bySql = await createSession(db.sql, userId)
  const kept = await createSession(db.sql, userId)
  for (const s of [byToken, bySql, kept]) {
    await validate(c.app, s.token)
    t.equal((await validate(d.app, s.token)).headers['x-session-cache'], 'hit')
  }
  redis.freeze()
  // Light traffic against a frozen Redis opens both circuits; answers stay
  // right. (Memory answers the cached sessions: unknown tokens ask Redis.)
  for (const { app } of [c, d]) {
    for (let i = 0; i < 20 && app.cacheClient!.circuit !== 'open'; i++) {
      t.equal((await validate(app, kept.token)).statusCode, 200)
      t.equal((await validate(app, `unknown-${i}`)).statusCode, 401)
    }
    t.equal(app.cacheClient!.circuit, 'open')
  }
  // Nothing reaches Redis now: the revoke and the notified delete can only
  // move the epoch.
  t.same((await c.app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: byToken.token } })).json(), { revoked: 1 })
  await db.sql`DELETE FROM platform.user_sessions WHERE id = ${bySql.id}`
  await sleep(300)
  redis.thaw()
  t.equal(await inspect.exists(`${ownPrefix}{${byToken.digest}}`, `${ownPrefix}{${bySql.digest}}`), 2,
    'the stale entries are still in Redis')
  const peer = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix: ownPrefix, env: { ...env, LOCAL_CACHE_MAX_ENTRIES: '0' } })
  await waitFor('Redis to serve hits again', async () =>
    (await validate(peer.app, kept.token)).headers['x-session-cache-tier'] === 'redis', 5000, 50)
  for (const { app } of [c, d, peer]) {
    t.equal((await validate(app, byToken.token)).statusCode, 401)
    t.equal((await validate(app, bySql.token)).statusCode, 401)
  }
})
