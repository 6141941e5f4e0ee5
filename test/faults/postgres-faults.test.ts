import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { faultProxy } from '../helpers/fault-proxy.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep, waitFor } from '../helpers/ports.js'
import { sample, scrape } from '../helpers/promql.js'

const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const userId = await createUser(db.sql)
const env = { DATABASE_CONNECT_TIMEOUT_SECONDS: '1', DATABASE_QUERY_TIMEOUT_MS: '500' }

function viaProxy (port: number): string {
  const url = new URL(db.url)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return url.toString()
}

t.test('Postgres unreachable: a miss is 503 with Retry-After, a cached session still 200', async t => {
  const proxy = await faultProxy(t, Number(new URL(db.url).port || 5432))
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const { app, logs } = await testApp(t, { databaseUrl: viaProxy(proxy.port), redisUrl, prefix, env })
  const cached = await createSession(db.sql, userId)
  const uncached = await createSession(db.sql, userId)
  t.equal((await validate(app, cached.token)).statusCode, 200)

  proxy.cut()
  const miss = await validate(app, uncached.token)
  t.equal(miss.statusCode, 503, 'never 401 because Postgres is down')
  t.equal(miss.headers['retry-after'], '1')
  t.equal(miss.headers['x-session-cache'], 'miss', 'the 503 says the caches were asked')
  t.same(Object.keys(miss.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.notMatch(miss.payload, /127\\.0\\.0\\.1|ECONN|postgres|:\d{4,5}/i, 'no driver message or host:port')
  const unknown = await validate(app, 'never-issued')
  t.equal(unknown.statusCode, 503, 'an unknown token cannot be called unknown either')
  for (let i = 0; i < 5; i++) await validate(app, 'never-issued')
  t.equal(logs.filter(line => line.includes('postgres calls failing')).length, 1, 'the outage is logged once, not once per request')
  const hit = await validate(app, cached.token)
  t.equal(hit.statusCode, 200)
  t.equal(hit.headers['x-session-cache'], 'hit')
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503)
  t.equal((await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: cached.token } })).statusCode, 503,
    'a revoke that cannot reach Postgres is 503, not a false "revoked: 0"')

  proxy.restore()
  await waitFor('Postgres to answer again', async () => (await validate(app, uncached.token)).statusCode === 200, 10_000, 100)
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
  t.notOk(logs.join('').includes(uncached.digest))
})

t.test('Postgres back after an outage of many failed connects: misses answered again within about a second', async t => {
  const proxy = await faultProxy(t, Number(new URL(db.url).port || 5432))
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const { app } = await testApp(t, { databaseUrl: viaProxy(proxy.port), redisUrl, prefix, env })
  const uncached = await createSession(db.sql, userId)

  // every failed connect lengthens the driver's back-off; its own would reach
  // 10-20 s within these seconds of misses
  proxy.cut()
  const outageEnds = Date.now() + 8000
  while (Date.now() < outageEnds) {
    t.equal((await validate(app, uncached.token)).statusCode, 503)
    await sleep(100)
  }

  proxy.restore()
  const back = Date.now()
  await waitFor('a miss to be answered', async () => (await validate(app, uncached.token)).statusCode === 200, 20_000, 50)
  const took = Date.now() - back
  t.ok(took < 2500, `answered ${took} ms after Postgres was reachable again`)
})

t.test('Postgres down at boot: starts, /readyz is 503, recovers without a restart', async t => {
  const proxy = await faultProxy(t, Number(new URL(db.url).port || 5432))
  proxy.cut()
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const { app } = await testApp(t, { databaseUrl: viaProxy(proxy.port), redisUrl, prefix, env, waitForCache: false })
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'alive')
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503, 'not ready')
  const s = await createSession(db.sql, userId)
  t.equal((await validate(app, s.token)).statusCode, 503)
  proxy.restore()
  await waitFor('ready', async () => (await app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200, 10_000, 100)
  await waitFor('the caches to be usable', () => app.coherence.sharedReadable() && app.coherence.localServable(), 10_000)
  t.equal((await validate(app, s.token)).statusCode, 200)
  t.equal((await validate(app, s.token)).headers['x-session-cache'], 'hit')
})

t.test('shutdown with Postgres unreachable: one last try at the activity, then closed well within the grace period', async t => {
  const proxy = await faultProxy(t, Number(new URL(db.url).port || 5432))
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  // a long resolution: the activity of the validations below stays pending
  const { app, logs } = await testApp(t, { databaseUrl: viaProxy(proxy.port), redisUrl, prefix, env: { ...env, ACTIVITY_RESOLUTION_SECONDS: '60' } })
  const sessions = await Promise.all(Array.from({ length: 20 }, () => createSession(db.sql, userId)))
  for (const s of sessions) t.equal((await validate(app, s.token)).statusCode, 200)
  proxy.cut()
  const started = performance.now()
  await app.close()
  const ms = performance.now() - started
  t.ok(ms < 5000, `closed in ${Math.round(ms)} ms (server.ts gives it 10 s)`)
  t.ok(logs.some(line => line.includes('activity not written at shutdown')), 'what was not written is told')
})

t.test('Postgres unreachable past the cache TTL: a cached session is answered from its stale entry, counted; a revoked one never', async t => {
  const proxy = await faultProxy(t, Number(new URL(db.url).port || 5432))
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  // memory off: Redis alone answers, and its entries are fresh for a second
  const { app } = await testApp(t, { databaseUrl: viaProxy(proxy.port), redisUrl, prefix, env: { ...env, SESSION_CACHE_TTL_SECONDS: '1', LOCAL_CACHE_MAX_ENTRIES: '0', CACHE_WARM_SESSIONS: '0' } })
  const [kept, refreshed, revoked] = [await createSession(db.sql, userId), await createSession(db.sql, userId), await createSession(db.sql, userId)]
  for (const s of [kept, refreshed, revoked]) t.equal((await validate(app, s.token)).headers['x-session-cache'], 'miss')
  t.equal((await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: revoked.token } })).json().revoked, 1)
  await sleep(1100)

  const fresh = await validate(app, refreshed.token)
  t.equal(fresh.headers['x-session-cache'], 'miss', 'Postgres reachable: a stale entry is read anew, not answered')

  proxy.cut()
  const answer = await validate(app, kept.token)
  t.equal(answer.statusCode, 200, 'a 200 from the stale entry, not a 503')
  t.equal(answer.headers['x-session-cache'], 'hit')
  t.equal(answer.headers['x-session-cache-tier'], 'redis')
  t.equal(answer.json().session.id, kept.id)
  t.equal(sample(await scrape(app), 'session_cache_stale_answers_total'), 1)
  t.equal((await validate(app, revoked.token)).statusCode, 503, 'a revoked session has no entry to be stale: 503, never valid')
})

t.test('SESSION_CACHE_STALE_SECONDS=0: past the cache TTL, a Postgres outage is a 503', async t => {
  const proxy = await faultProxy(t, Number(new URL(db.url).port || 5432))
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const { app } = await testApp(t, { databaseUrl: viaProxy(proxy.port), redisUrl, prefix, env: { ...env, SESSION_CACHE_TTL_SECONDS: '1', SESSION_CACHE_STALE_SECONDS: '0', LOCAL_CACHE_MAX_ENTRIES: '0', CACHE_WARM_SESSIONS: '0' } })
  const s = await createSession(db.sql, userId)
  t.equal((await validate(app, s.token)).statusCode, 200)
  await sleep(1100)
  proxy.cut()
  t.equal((await validate(app, s.token)).statusCode, 503)
  t.equal(sample(await scrape(app), 'session_cache_stale_answers_total'), 0)
})
