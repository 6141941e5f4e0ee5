import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { faultProxy } from '../helpers/fault-proxy.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/ports.js'

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
  t.same(Object.keys(miss.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.notMatch(miss.payload, /127\\.0\\.0\\.1|ECONN|postgres|:\d{4,5}/i, 'no driver message or host:port')
  const unknown = await validate(app, 'never-issued')
  t.equal(unknown.statusCode, 503, 'an unknown token cannot be called unknown either')
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
