import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sample, scrape } from '../helpers/promql.js'
import { sleep, waitFor } from '../helpers/ports.js'

// The in-process cache (L1): what it answers, what bounds it, what empties it.
const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)
const userId = await createUser(db.sql)
const tierOf = async (app: Parameters<typeof validate>[0], token: string) => (await validate(app, token)).headers['x-session-cache-tier']

t.test('POST /sessions/validate › a second validation is answered from memory, counted as a hit of tier local', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix })
  const s = await createSession(db.sql, userId)
  const first = await validate(app, s.token)
  t.equal(first.headers['x-session-cache'], 'miss')
  t.equal(first.headers['x-session-cache-tier'], undefined)
  const second = await validate(app, s.token)
  t.equal(second.headers['x-session-cache'], 'hit')
  t.equal(second.headers['x-session-cache-tier'], 'local')
  t.same(second.json(), first.json(), 'the same answer, byte for byte in meaning')
  const metrics = await scrape(app)
  t.equal(sample(metrics, 'session_cache_hits_total{tier="local"}'), 1)
  t.equal(sample(metrics, 'session_local_cache_entries'), 1)
  t.ok(sample(metrics, 'session_local_cache_bytes') > 0)
  t.equal(sample(metrics, 'session_local_cache_lease_held'), 1)
  const health = (await app.inject({ method: 'GET', url: '/healthz/redis' })).json()
  t.match(health.localCache, { enabled: true, leaseHeld: true, entries: 1, hits: 1 })
  t.equal(health.sessionCache.metrics.hits, 1, 'the SPEC\'s hit counter counts both tiers')
})

t.test('memory is bounded by LOCAL_CACHE_MAX_ENTRIES, least recently used first', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { LOCAL_CACHE_MAX_ENTRIES: '3' } })
  const sessions = await Promise.all(Array.from({ length: 6 }, () => createSession(db.sql, userId)))
  for (const s of sessions) await validate(app, s.token)
  const metrics = await scrape(app)
  t.equal(sample(metrics, 'session_local_cache_entries'), 3)
  t.equal(sample(metrics, 'session_local_cache_evictions_total{reason="evict"}'), 3)
  t.equal(await tierOf(app, sessions[5]!.token), 'local', 'the most recent are kept')
  t.equal(await tierOf(app, sessions[0]!.token), 'redis', 'the oldest went (Redis still has it)')
})

t.test('and by bytes (LOCAL_CACHE_MAX_BYTES)', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { LOCAL_CACHE_MAX_BYTES: String(1024 * 1024) } })
  // about 300 kB each on the heap: six cannot fit in 1 MiB
  const big = 'x'.repeat(300_000)
  const sessions = await Promise.all(Array.from({ length: 6 }, () => createSession(db.sql, userId, { userAgent: big })))
  for (const s of sessions) await validate(app, s.token)
  const metrics = await scrape(app)
  t.ok(sample(metrics, 'session_local_cache_bytes') <= 1024 * 1024, `${sample(metrics, 'session_local_cache_bytes')} bytes held`)
  t.ok(sample(metrics, 'session_local_cache_entries') < 6)
})

t.test('an entry lives at most LOCAL_CACHE_TTL_SECONDS, and never past expires_at', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { LOCAL_CACHE_TTL_SECONDS: '1' } })
  const s = await createSession(db.sql, userId)
  await validate(app, s.token)
  t.equal(await tierOf(app, s.token), 'local')
  await sleep(1100)
  t.equal(await tierOf(app, s.token), 'redis', 'after the memory TTL, Redis answers')

  const short = await createSession(db.sql, userId, { expiresInMs: 800 })
  await validate(app, short.token)
  t.equal(await tierOf(app, short.token), 'local')
  await sleep(900)
  const res = await validate(app, short.token)
  t.equal(res.statusCode, 401)
  t.same(res.json(), { valid: false, reason: 'expired' })
})

t.test('an epoch move voids what memory copied from Redis, and keeps what Postgres answered', async t => {
  // no warm-up: it would rightly refill both tiers from Postgres under the
  // new epoch (the session was active a moment ago), which is not what is shown here
  const env = { CACHE_WARM_SESSIONS: '0' }
  const { app: filler } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })
  const { app: copier } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })
  const s = await createSession(db.sql, userId)
  t.equal((await validate(filler, s.token)).headers['x-session-cache'], 'miss', 'Postgres answered the filler')
  t.equal(await tierOf(copier, s.token), 'redis', 'the copier read it from Redis')
  t.equal(await tierOf(copier, s.token), 'local')
  t.equal(await tierOf(filler, s.token), 'local')
  const before = [filler.sessions.epoch, copier.sessions.epoch]
  await db.sql`UPDATE session_validator.cache_epoch SET epoch = epoch + 1`
  await waitFor('the epoch', () => filler.sessions.epoch !== before[0] && copier.sessions.epoch !== before[1])
  const copied = await validate(copier, s.token)
  t.equal(copied.statusCode, 200)
  t.equal(copied.headers['x-session-cache-tier'], undefined, 'neither the copy in memory nor Redis (old epoch) answered')
  t.equal(await tierOf(filler, s.token), 'local', 'what Postgres answered is still served from memory')
})

t.test('a user changed straight in Postgres is answered anew from every tier within a second', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix })
  const user = await createUser(db.sql, { email: 'one@example.com' })
  const sessions = [await createSession(db.sql, user), await createSession(db.sql, user)]
  for (const s of sessions) { await validate(app, s.token); t.equal(await tierOf(app, s.token), 'local') }
  await db.sql`UPDATE platform.users SET email = 'two@example.com' WHERE id = ${user}`
  await waitFor('the new email', async () => {
    for (const s of sessions) if ((await validate(app, s.token)).json().user.email !== 'two@example.com') return false
    return true
  }, 1000, 10)
  t.pass('both sessions of the user answered anew')
})

t.test('LOCAL_CACHE_MAX_ENTRIES=0: no memory tier, Redis alone', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { LOCAL_CACHE_MAX_ENTRIES: '0' } })
  const s = await createSession(db.sql, userId)
  t.equal((await validate(app, s.token)).headers['x-session-cache'], 'miss')
  for (let i = 0; i < 3; i++) t.equal(await tierOf(app, s.token), 'redis')
  const health = (await app.inject({ method: 'GET', url: '/healthz/redis' })).json()
  t.match(health.localCache, { enabled: false, leaseHeld: false, entries: 0 })
})

t.test('losing the listener empties memory and stops answering from it until the lease is back', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix })
  const s = await createSession(db.sql, userId)
  await validate(app, s.token)
  t.equal(await tierOf(app, s.token), 'local')
  await db.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${`session-validator-listener ${app.coherence.id}`}`
  await waitFor('the lease to go', () => !app.coherence.localServable(), 5000, 5)
  t.equal(sample(await scrape(app), 'session_local_cache_entries'), 0, 'memory emptied at once')
  t.not(await tierOf(app, s.token), 'local')
  await waitFor('the lease to come back', () => app.coherence.localServable(), 10_000)
  t.ok(sample(await scrape(app), 'session_local_cache_lease_losses_total') >= 1, 'the loss is counted')
  await validate(app, s.token)
  t.equal(await tierOf(app, s.token), 'local', 'memory is used again')
})

t.test('without Redis: memory is on, and coherent across instances through Postgres', async t => {
  const a = await testApp(t, { databaseUrl: db.url })
  const b = await testApp(t, { databaseUrl: db.url })
  const s = await createSession(db.sql, userId)
  const bySql = await createSession(db.sql, userId)
  for (const { app } of [a, b]) {
    for (const x of [s, bySql]) {
      t.equal((await validate(app, x.token)).headers['x-session-cache'], 'miss', 'memory was asked')
      const hit = await validate(app, x.token)
      t.equal(hit.headers['x-session-cache'], 'hit')
      t.equal(hit.headers['x-session-cache-tier'], 'local')
    }
  }
  t.same((await a.app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })).json(), { revoked: 1 })
  t.equal((await validate(b.app, s.token)).statusCode, 401, 'revoked through A: B rejects at once')
  await db.sql`DELETE FROM platform.user_sessions WHERE id = ${bySql.id}`
  await waitFor('both to reject the row deleted in SQL', async () =>
    (await validate(a.app, bySql.token)).statusCode === 401 && (await validate(b.app, bySql.token)).statusCode === 401, 1000, 10)
  t.pass('deleted in SQL: both reject within a second')
})
