import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, keysUnder, ownRedis } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep, waitFor } from '../helpers/ports.js'
import { FILL_WINDOW_MS } from '../../src/sessions/coherence/tombstones.js'

const db = await freshDatabase(t)
const userId = await createUser(db.sql)
const env = { REDIS_TIMEOUT_MS: '100', BREAKER_HALF_OPEN_AFTER_MS: '300', BREAKER_WINDOW_MS: '1000' }

async function timedValidate (app: Parameters<typeof validate>[0], token: string) {
  const start = performance.now()
  const res = await validate(app, token)
  return { res, ms: performance.now() - start }
}

t.test('boots and serves with Redis down, and uses the cache once Redis is up', async t => {
  const redis = await ownRedis(t)
  await redis.kill()
  const prefix = freshPrefix()
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix, env, waitForCache: false })
  await waitFor('the epoch', () => app.sessions.epoch !== undefined)
  const s = await createSession(db.sql, userId)
  const res = await validate(app, s.token)
  t.equal(res.statusCode, 200, 'answered from Postgres')
  t.equal(res.headers['x-session-cache'], 'miss', 'memory was asked; Redis could not be')
  t.equal(res.headers['x-session-cache-tier'], undefined)
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'ready without Redis')
  t.equal((await app.inject({ method: 'GET', url: '/healthz/redis' })).statusCode, 503)
  const connected = async () => (await app.inject({ method: 'GET', url: '/metrics' })).payload
    .split('\n').find(l => l.startsWith('session_cache_redis_connected{dependency="redis"}'))?.split(' ')[1]
  t.equal(await connected(), '0', 'the connected gauge says so, with no traffic needed')

  await redis.start()
  // A session this instance has in memory says nothing about Redis: an
  // instance without a memory cache must see Redis hits again.
  const peer = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix, env: { ...env, LOCAL_CACHE_MAX_ENTRIES: '0' }, waitForCache: false })
  await waitFor('a Redis hit after Redis came up', async () => {
    await validate(app, s.token)
    return (await validate(peer.app, s.token)).headers['x-session-cache-tier'] === 'redis'
  }, 10_000, 100)
  t.pass('reconnected without a restart')
  await waitFor('the first instance reconnected too', async () => await connected() === '1', 5000, 50)
  t.equal(await connected(), '1')
})

t.test('Redis killed and frozen mid-run: answers stay right and fast', async t => {
  const redis = await ownRedis(t)
  const prefix = freshPrefix()
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix, env })
  const peer = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix, env: { ...env, LOCAL_CACHE_MAX_ENTRIES: '0' } })
  const live = await createSession(db.sql, userId)
  const gone = await createSession(db.sql, userId)
  await validate(app, live.token)
  await validate(app, gone.token)
  await db.sql`DELETE FROM platform.user_sessions WHERE id = ${gone.id}`
  await waitFor('the delete to be notified', async () => (await validate(app, gone.token)).statusCode === 401)

  for (const fault of ['kill', 'freeze'] as const) {
    if (fault === 'kill') await redis.kill()
    else redis.freeze()
    let slowest = 0
    for (let i = 0; i < 30; i++) {
      const ok = await timedValidate(app, live.token)
      const no = await timedValidate(app, gone.token)
      t.equal(ok.res.statusCode, 200, `${fault}: a live session stays valid`)
      t.equal(no.res.statusCode, 401, `${fault}: a deleted session stays rejected, never 5xx`)
      slowest = Math.max(slowest, ok.ms, no.ms)
    }
    // The live session is answered from memory; the deleted one asks Redis
    // every time. The Redis timeout (100 ms) bounds a call until the circuit
    // opens; then none waits.
    t.ok(slowest < 1000, `${fault}: slowest answer ${slowest.toFixed(1)} ms`)
    t.equal(app.cacheClient!.circuit, 'open', `${fault}: the circuit opened under light traffic`)
    if (fault === 'kill') await redis.start()
    else redis.thaw()
    await waitFor(`${fault}: Redis hits again`, async () =>
      (await validate(peer.app, live.token)).headers['x-session-cache-tier'] === 'redis', 10_000, 100)
  }
})

t.test('a fill abandoned by the timeout never lands later', async t => {
  const redis = await ownRedis(t)
  const prefix = freshPrefix()
  const inspect = inspector(t, redis.url)
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix, env: { ...env, BREAKER_HALF_OPEN_AFTER_MS: '60000' } })
  const s = await createSession(db.sql, userId)
  // Freeze Redis after the miss has read Postgres, so the fill is sent into a
  // frozen server and abandoned by our timeout.
  const frozen = await testApp(t, {
    databaseUrl: db.url,
    redisUrl: redis.url,
    prefix,
    env,
    beforeFill: async () => { redis.freeze() }
  })
  const res = await validate(frozen.app, s.token)
  t.equal(res.statusCode, 200)
  await sleep(FILL_WINDOW_MS + 500)
  redis.thaw()
  await sleep(200)
  t.equal(await inspect.exists(`${prefix}{${s.digest}}`), 0, 'the late fill was refused by Redis')
  for (const key of await keysUnder(inspect, prefix)) t.ok(await inspect.pttl(key) > 0, `${key} has a TTL`)
  t.equal((await validate(app, s.token)).statusCode, 200)
})
