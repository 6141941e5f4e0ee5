import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sample, scrape } from '../helpers/promql.js'
import { waitFor } from '../helpers/ports.js'

// Instances come and go (deploys, autoscaling, crashes, listener reconnects);
// the shared cache must stay warm through all of it, and still never serve a
// change made while nobody was listening.
const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
const redis = inspector(t, redisUrl, prefix)
const userId = await createUser(db.sql)

interface Closable { close(): Promise<unknown> }
const instance = async (env: Record<string, string> = {}) => (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })).app
// An instance without memory: a hit it reports can only come from Redis.
const observer = async () => await instance({ LOCAL_CACHE_MAX_ENTRIES: '0' })
const epochMoves = async (app: FastifyInstance) => sample(await scrape(app), 'session_cache_invalidations_total{reason="epoch"}')
const epochNow = async () => (await db.sql<Array<{ epoch: string }>>`SELECT epoch::text FROM session_validator.cache_epoch`)[0]!.epoch
const close = async (...apps: Closable[]) => { for (const app of apps) await app.close() }

t.test('a second instance starting leaves the first one\'s cache warm', async t => {
  const a = await instance()
  const s = await createSession(db.sql, userId)
  t.equal((await validate(a, s.token)).headers['x-session-cache'], 'miss')
  t.equal((await validate(a, s.token)).headers['x-session-cache'], 'hit')
  const epoch = await epochNow()
  const movesBefore = await epochMoves(a)

  const b = await instance()
  const res = await validate(a, s.token)
  t.equal(res.headers['x-session-cache'], 'hit', 'A still answers from its cache')
  t.equal((await validate(b, s.token)).headers['x-session-cache-tier'], 'redis', 'B finds it in Redis')
  t.equal(await epochNow(), epoch, 'the epoch did not move')
  t.equal(await epochMoves(a), movesBefore, 'A saw no epoch invalidation')
  await close(a, b)
})

t.test('an instance restarting leaves the others\' cache warm', async t => {
  const a = await instance()
  let b = await instance()
  const s = await createSession(db.sql, userId)
  await validate(a, s.token)
  const epoch = await epochNow()
  for (let restart = 0; restart < 3; restart++) {
    await b.close()
    b = await instance()
    t.equal((await validate(b, s.token)).headers['x-session-cache-tier'], 'redis', `restart ${restart + 1}: a Redis hit on the new instance`)
    t.equal((await validate(a, s.token)).headers['x-session-cache'], 'hit')
  }
  t.equal(await epochNow(), epoch, 'three restarts, no epoch move')
  await close(a, b)
})

t.test('a change made while no instance listens is replayed by the next one to start', async t => {
  const kept = await createSession(db.sql, userId)
  const gone = await createSession(db.sql, userId)
  const renamed = await createUser(db.sql, { email: 'before@example.com' })
  const theirs = await createSession(db.sql, renamed)
  const a = await instance()
  for (const s of [kept, gone, theirs]) await validate(a, s.token)
  // let A vouch for everything it heard (claims are made about once a second)
  await new Promise(resolve => setTimeout(resolve, 1500))
  await a.close()
  const epoch = await epochNow()

  // nobody listens: only the change log remembers these
  await db.sql`DELETE FROM platform.user_sessions WHERE id = ${gone.id}`
  await db.sql`UPDATE platform.users SET email = 'after@example.com' WHERE id = ${renamed}`
  t.equal(await redis.exists(`${prefix}{${gone.digest}}`), 1, 'the stale entry is still in Redis')

  const b = await observer()
  t.equal((await validate(b, gone.token)).statusCode, 401, 'the deleted session is not served from Redis')
  t.equal((await validate(b, theirs.token)).json().user.email, 'after@example.com', 'the renamed user is not served stale')
  t.equal((await validate(b, kept.token)).headers['x-session-cache-tier'], 'redis', 'the rest of the cache is warm')
  t.equal(await epochNow(), epoch, 'replayed, not flushed')
  t.ok(sample(await scrape(b), 'session_change_log_replays_total') >= 1, 'counted as a replay')
  await close(b)
})

t.test('a gap the log cannot prove covered moves the epoch', async t => {
  const s = await createSession(db.sql, userId)
  const a = await instance()
  await validate(a, s.token)
  await new Promise(resolve => setTimeout(resolve, 1500))
  await a.close()
  const epoch = await epochNow()
  // as if the whole fleet had been away longer than the log is kept
  await db.sql`UPDATE session_validator.change_log_state SET pruned_through = pg_current_xact_id()::text::bigint`
  await db.sql`DELETE FROM platform.user_sessions WHERE id = ${s.id}`
  await db.sql`DELETE FROM session_validator.changes`
  const b = await observer()
  t.equal((await validate(b, s.token)).statusCode, 401)
  t.not(await epochNow(), epoch, 'the epoch moved')
  t.equal(sample(await scrape(b), 'session_cache_epoch_moves_total{cause="log_pruned"}'), 1, 'for the pruned log')
  await close(b)
})

t.test('Redis losing its data (no watermark) moves the epoch once', async t => {
  const a = await instance()
  await new Promise(resolve => setTimeout(resolve, 1500))
  await a.close()
  await redis.del(`${prefix}coherence:applied`)
  const b = await observer()
  t.equal(sample(await scrape(b), 'session_cache_epoch_moves_total{cause="watermark_missing"}'), 1)
  const c = await observer()
  t.equal(sample(await scrape(c), 'session_cache_epoch_moves_total{cause="watermark_missing"}'), 0, 'the next instance finds the watermark again')
  await close(b, c)
})

t.test('the change log is pruned by age, and pruning is recorded', async t => {
  const a = await instance({ CHANGE_LOG_RETENTION_SECONDS: '60' })
  await db.sql`INSERT INTO session_validator.changes (kind, key, created_at) VALUES ('s', repeat('0', 64), now() - interval '2 minutes')`
  const [{ xid }] = await db.sql<Array<{ xid: string }>>`SELECT max(xid)::text AS xid FROM session_validator.changes` as unknown as [{ xid: string }]
  await waitFor('a prune', async () => {
    await a.coherence.pruneNow()
    return (await db.sql`SELECT 1 FROM session_validator.changes WHERE created_at < now() - interval '1 minute'`).length === 0
  }, 5000, 100)
  const [state] = await db.sql<Array<{ pruned: string }>>`SELECT pruned_through::text AS pruned FROM session_validator.change_log_state`
  t.ok(BigInt(state!.pruned) >= BigInt(xid!), 'pruned_through covers what was removed')
  await close(a)
})
