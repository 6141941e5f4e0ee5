import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser, type TestSession } from '../helpers/fixtures.js'
import { faultProxy } from '../helpers/fault-proxy.js'
import { heldFill } from '../helpers/held-fill.js'
import { sample, scrape } from '../helpers/promql.js'
import { waitFor } from '../helpers/ports.js'

// After the epoch moves (the shared cache voided), one instance warms it with
// the most recently active sessions, through the fill path a miss takes.
const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const userId = await createUser(db.sql)

async function activeSessions (n: number): Promise<TestSession[]> {
  const sessions: TestSession[] = []
  for (let i = 0; i < n; i++) sessions.push(await createSession(db.sql, userId))
  // the first is the most recently active
  for (const [i, s] of sessions.entries()) await db.sql`UPDATE platform.user_sessions SET last_activity_at = now() - ${i} * interval '1 second' WHERE id = ${s.id}`
  return sessions
}
const moveEpoch = () => db.sql`UPDATE session_validator.cache_epoch SET epoch = epoch + 1`
const runs = async (app: FastifyInstance, result: string) => sample(await scrape(app), `session_cache_warm_runs_total{result="${result}"}`)

t.test('after an epoch move the most recently active sessions are hits on their first request; one instance warms', async t => {
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const env = { CACHE_WARM_SESSIONS: '30' }
  const a = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })).app
  const b = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })).app
  // the first start on this Redis (no watermark) moved the epoch and warmed nothing yet
  const total = async (result: string) => await runs(a, result) + await runs(b, result)
  await waitFor('the first warm-up', async () => await total('done') === 1, 10_000, 50)
  const sessions = await activeSessions(40)
  await moveEpoch()
  await waitFor('a warm-up done', async () => await total('done') === 2, 10_000, 50)
  await waitFor('the other one to skip', async () => await total('skipped') === 1, 5000, 50)
  t.pass('one instance warmed, the other skipped the same epoch')
  const observer = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { LOCAL_CACHE_MAX_ENTRIES: '0' } })).app
  const first = await Promise.all(sessions.map(s => validate(observer, s.token)))
  t.same(first.slice(0, 30).map(r => r.headers['x-session-cache-tier']), Array(30).fill('redis'), 'the 30 most recently active: a Redis hit at once')
  t.same(first.slice(30).map(r => r.headers['x-session-cache']), Array(10).fill('miss'), 'the rest were not warmed (CACHE_WARM_SESSIONS)')
  const metrics = await scrape(a) + await scrape(b)
  t.equal(sample(await scrape(a), 'session_cache_warmed_total') + sample(await scrape(b), 'session_cache_warmed_total'), 30)
  t.match(metrics, /session_cache_warm_duration_seconds_count [12]/)
})

t.test('a session revoked while the warm-up holds its page is never written back', async t => {
  const prefix = freshPrefix()
  const redis = inspector(t, redisUrl, prefix)
  // held only once armed: the warm-up of the first start on this Redis (no
  // watermark yet, so the epoch moves) must pass
  const hold = heldFill()
  let armed = false
  const warming = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, beforeFill: async () => { if (armed) await hold.beforeFill() } })).app
  const other = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { CACHE_WARM_SESSIONS: '0' } })).app
  await waitFor('the first warm-up', async () => await runs(warming, 'done') === 1, 10_000, 50)
  const sessions = await activeSessions(5)
  armed = true
  const atFill = hold.next()
  await moveEpoch()
  await atFill
  // the page is read; its fills have not run
  t.same((await other.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: sessions[0]!.token } })).json(), { revoked: 1 })
  armed = false
  hold.release()
  await waitFor('the warm-up done', async () => await runs(warming, 'done') === 2, 10_000, 50)
  t.equal(await redis.exists(`${prefix}{${sessions[0]!.digest}}`), 0, 'the tombstone refused the revoked session')
  t.equal(await redis.exists(`${prefix}{${sessions[1]!.digest}}`), 1, 'the others were warmed')
  for (const app of [warming, other]) t.equal((await validate(app, sessions[0]!.token)).statusCode, 401)
})

t.test('CACHE_WARM_SESSIONS=0 turns warming off', async t => {
  const prefix = freshPrefix()
  const redis = inspector(t, redisUrl, prefix)
  const app = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { CACHE_WARM_SESSIONS: '0' } })).app
  const [s] = await activeSessions(1)
  const before = app.sessions.epoch
  await moveEpoch()
  await waitFor('the move', () => app.sessions.epoch !== before)
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(await redis.exists(`${prefix}{${s!.digest}}`), 0)
  t.equal(await runs(app, 'done'), 0)
})

t.test('a warm-up that failed with Redis away runs again once Redis is back, for the same epoch', async t => {
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const proxy = await faultProxy(t, Number(new URL(redisUrl).port || 6379))
  const app = (await testApp(t, { databaseUrl: db.url, redisUrl: `redis://127.0.0.1:${proxy.port}`, prefix, env: { CACHE_WARM_SESSIONS: '1000' } })).app
  await waitFor('the first warm-up', async () => await runs(app, 'done') === 1, 10_000, 50)
  const sessions = await activeSessions(5)
  proxy.cut()
  await moveEpoch()
  await waitFor('a failed run', async () => await runs(app, 'failed') >= 1, 10_000, 50)
  t.equal(await runs(app, 'done'), 1, 'not warmed while Redis is away')
  proxy.restore()
  await waitFor('the retry to warm it', async () => await runs(app, 'done') === 2, 20_000, 100)
  const observer = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { LOCAL_CACHE_MAX_ENTRIES: '0' } })).app
  const answers = await Promise.all(sessions.map(s => validate(observer, s.token)))
  t.same(answers.map(r => r.headers['x-session-cache-tier']), Array(5).fill('redis'), 'a Redis hit at once')
})
