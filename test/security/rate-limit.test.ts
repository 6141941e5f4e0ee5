import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { loadConfig } from '../../src/config.js'
import { ConfigError } from '../../src/errors.js'
import { SYNC_EVERY_MS } from '../../src/limits/shared-counter.js'
import { sha256Hex } from '../../src/sha256.js'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, keysUnder, ownRedis, sharedRedisUrl } from '../helpers/redis.js'
import { testApp } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sample, scrape } from '../helpers/promql.js'
import { sleep, waitFor } from '../helpers/ports.js'

const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const userId = await createUser(db.sql)
const keys = [`studio-${randomBytes(16).toString('hex')}`, `worker-${randomBytes(16).toString('hex')}`]

interface As { key?: string | undefined, from?: string | undefined, endUser?: string | undefined, via?: 'x-real-ip' | 'x-forwarded-for' }

function validateAs (app: FastifyInstance, token: string, as: As = {}) {
  const headers: Record<string, string> = {}
  if (as.key !== undefined) headers['x-api-key'] = as.key
  if (as.endUser !== undefined) headers[as.via ?? 'x-real-ip'] = as.endUser
  return app.inject({ method: 'POST', url: '/sessions/validate', payload: { token }, headers, ...(as.from === undefined ? {} : { remoteAddress: as.from }) })
}

const metric = async (app: FastifyInstance, series: string) => sample(await scrape(app), series)
const fallbacks = (app: FastifyInstance) => metric(app, 'rate_limit_store_fallback_total')
const findQueries = (app: FastifyInstance) => metric(app, 'db_query_duration_seconds_count{query="find_session"}')

t.test('with the defaults, 20,000 validations from one caller in under a minute: no 429', async t => {
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix })
  const sessions = await Promise.all(Array.from({ length: 50 }, () => createSession(db.sql, userId)))
  const statuses = new Map<number, number>()
  const start = performance.now()
  for (let i = 0; i < 20_000; i += 50) {
    const batch = await Promise.all(sessions.map((s, j) => validateAs(app, (i + j) % 500 === 499 ? `stale-cookie-${i + j}` : s.token)))
    for (const res of batch) statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
  }
  const seconds = (performance.now() - start) / 1000
  t.ok(seconds < 60, `20,000 validations in ${seconds.toFixed(1)} s`)
  t.same(Object.fromEntries(statuses), { 200: 19_960, 401: 40 }, 'every answer is the real one')
  t.equal(await metric(app, 'rate_limited_total{budget="requests"}'), 0)
})

t.test('RATE_LIMIT_MAX turns the per-caller request limit on: 429 with Retry-After, never 401', async t => {
  const prefix = freshPrefix()
  const redis = inspector(t, redisUrl, prefix)
  const { app, logs } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { RATE_LIMIT_MAX: '5', SERVICE_API_KEYS: keys.join(',') } })
  const s = await createSession(db.sql, userId)
  for (let i = 0; i < 5; i++) {
    const res = await validateAs(app, s.token, { key: keys[0] })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['x-ratelimit-limit'], '5')
    t.equal(res.headers['x-ratelimit-remaining'], String(4 - i))
  }
  const over = await validateAs(app, s.token, { key: keys[0] })
  t.equal(over.statusCode, 429, 'a valid session over the limit is 429, not 401')
  const retryAfter = Number(over.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${retryAfter} s`)
  t.match(over.json(), { statusCode: 429, code: 'SV_RATE_LIMITED', error: 'Too Many Requests', message: /retry in \d+ seconds/ })
  t.equal((await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token }, headers: { 'x-api-key': keys[0]! } })).statusCode, 429,
    'revocations share the caller\'s budget')
  t.equal((await validateAs(app, s.token, { key: keys[1] })).statusCode, 200, 'another caller has its own budget')
  for (const url of ['/healthz', '/readyz', '/healthz/redis', '/metrics']) {
    const res = await app.inject({ method: 'GET', url, headers: { 'x-api-key': keys[0]! } })
    t.equal(res.statusCode, 200, `${url} is not limited`)
  }

  await sleep(SYNC_EVERY_MS * 3)
  const window = Math.floor(Date.now() / 60_000)
  const limiterKeys = (await keysUnder(redis, `${prefix}rl:`)).sort()
  t.equal(limiterKeys.length, 2, 'one request counter per caller')
  for (const key of limiterKeys) {
    t.match(key, new RegExp(`^${prefix}rl:req:k:[0-9a-f]{32}:(${window}|${window - 1})$`), 'named by caller and by window')
    const pttl = await redis.pttl(key)
    t.ok(pttl > 0 && pttl <= 120_000, `${key} expires after its window (${pttl} ms)`)
    for (const apiKey of keys) {
      t.notOk(key.includes(apiKey), 'no API key in a key name')
      t.notOk(key.includes(sha256Hex(apiKey)), 'nor its full digest')
    }
  }
  t.equal(await metric(app, 'rate_limited_total{budget="requests"}'), 2)
  t.equal(await fallbacks(app), 0, 'every decision was taken with shared counts')
  for (const apiKey of keys) t.notOk(logs.join('').includes(apiKey), 'no API key in the logs')
})

t.test('instances share the counts through Redis', async t => {
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const env = { RATE_LIMIT_MAX: '6', SERVICE_API_KEYS: keys[0]! }
  const a = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })
  const b = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })
  for (let i = 0; i < 3; i++) t.equal((await validateAs(a.app, 'unknown-token', { key: keys[0] })).statusCode, 401)
  await sleep(SYNC_EVERY_MS * 3)
  for (let i = 0; i < 3; i++) t.equal((await validateAs(b.app, 'unknown-token', { key: keys[0] })).statusCode, 401)
  await sleep(SYNC_EVERY_MS * 3)
  t.equal((await validateAs(a.app, 'unknown-token', { key: keys[0] })).statusCode, 429, 'the seventh request, on either instance, is over')
  t.equal((await validateAs(b.app, 'unknown-token', { key: keys[0] })).statusCode, 429)
})

t.test('a flood of unknown tokens for one forwarded end user: that address gets 429 on misses, nobody else does', async t => {
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  // a window of an hour: a minute boundary in the middle would reset the budget
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { SERVICE_API_KEYS: keys.join(','), RATE_LIMIT_WINDOW_MS: '3600000' } })
  const studio = keys[0]!
  const cached = await createSession(db.sql, userId)
  t.equal((await validateAs(app, cached.token, { key: studio, endUser: '198.51.100.7' })).statusCode, 200)
  const statuses = new Map<number, number>()
  for (let i = 0; i < 5000; i += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, (_v, j) =>
      validateAs(app, `random-cookie-${i + j}`, { key: studio, endUser: '198.51.100.7', via: 'x-forwarded-for' })))
    for (const res of batch) statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
  }
  t.same([...statuses.keys()].sort(), [401, 429], 'a 401 per guess until the budget is spent, then 429, never 5xx')
  t.ok(statuses.get(401)! >= 600 && statuses.get(401)! <= 650, `${statuses.get(401)} guesses reached Postgres (budget 600)`)

  const over = await validateAs(app, 'one-more-guess', { key: studio, endUser: '198.51.100.7' })
  t.equal(over.statusCode, 429)
  t.ok(Number(over.headers['retry-after']) >= 1, 'with Retry-After')
  t.match(over.json(), { code: 'SV_RATE_LIMITED', message: /failed lookups/ })
  const uncached = await createSession(db.sql, userId)
  t.equal((await validateAs(app, uncached.token, { key: studio, endUser: '198.51.100.7' })).statusCode, 429,
    'a lookup that would reach Postgres is refused for that address, never told 401')
  t.equal((await validateAs(app, cached.token, { key: studio, endUser: '198.51.100.7' })).statusCode, 200,
    'a cached session is answered, even for that address')
  t.equal((await validateAs(app, uncached.token, { key: studio, endUser: '203.0.113.9' })).statusCode, 200,
    'another end user through the same caller is not touched')
  t.equal((await validateAs(app, 'a-guess', { key: studio, endUser: '203.0.113.9' })).statusCode, 401)
  t.ok(await metric(app, 'rate_limited_total{budget="failed_lookups_end_user"}') > 4000)
})

t.test('without a forwarded address the caller is charged, and its cached sessions stay 200 through a flood', async t => {
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { SERVICE_API_KEYS: keys.join(','), RATE_LIMIT_CALLER_FAILED_MAX: '300', RATE_LIMIT_WINDOW_MS: '3600000' } })
  const cached = await Promise.all(Array.from({ length: 5 }, () => createSession(db.sql, userId)))
  for (const s of cached) await validateAs(app, s.token, { key: keys[0] })
  const queries = await findQueries(app)
  let valid = 0
  let throttled = 0
  for (let i = 0; i < 2000; i += 40) {
    const batch = await Promise.all([
      ...Array.from({ length: 35 }, (_v, j) => validateAs(app, `guess-${i + j}`, { key: keys[0] })),
      ...cached.map(s => validateAs(app, s.token, { key: keys[0] }))
    ])
    for (const res of batch.slice(35)) if (res.statusCode === 200) valid++
    for (const res of batch.slice(0, 35)) if (res.statusCode === 429) throttled++
  }
  t.equal(valid, 250, 'every validation of a cached session answered 200 during the flood')
  t.ok(throttled >= 1750 - 340, `${throttled} of 1,750 guesses refused once the caller's budget was spent`)
  t.ok(await findQueries(app) - queries <= 340, 'what the flood cost Postgres is bounded by the budget')
  t.equal((await validateAs(app, 'guess', { key: keys[1] })).statusCode, 401, 'another caller has its own budget')
})

t.test('a forwarded address is believed only from an API key or a TRUSTED_PROXIES address', async t => {
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const env = { RATE_LIMIT_FAILED_MAX: '2', RATE_LIMIT_CALLER_FAILED_MAX: '4', TRUSTED_PROXIES: '10.9.0.0/16,2001:db8::1', RATE_LIMIT_WINDOW_MS: '3600000' }
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })
  // an untrusted caller: its X-Real-IP is ignored, it is charged itself
  const untrusted = async (endUser: string) => (await validateAs(app, 'guess', { from: '192.0.2.1', endUser })).statusCode
  t.same([await untrusted('1.1.1.1'), await untrusted('1.1.1.2'), await untrusted('1.1.1.3'), await untrusted('1.1.1.4'), await untrusted('1.1.1.5')],
    [401, 401, 401, 401, 429], 'new end-user addresses each time do not reset its budget')
  // a trusted proxy: each end user has a budget of its own
  const trusted = async (from: string, endUser: string) => (await validateAs(app, 'guess', { from, endUser })).statusCode
  t.same([await trusted('10.9.1.1', '5.5.5.5'), await trusted('10.9.1.1', '5.5.5.5'), await trusted('10.9.1.1', '5.5.5.5')], [401, 401, 429])
  t.equal(await trusted('10.9.1.1', '6.6.6.6'), 401, 'another end user behind the same proxy')
  t.equal(await trusted('2001:db8::1', '7.7.7.7'), 401, 'an IPv6 proxy address')
})

t.test('the budgets come back when their window ends', async t => {
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { RATE_LIMIT_MAX: '2', RATE_LIMIT_CALLER_FAILED_MAX: '1', RATE_LIMIT_WINDOW_MS: '1000' } })
  // start at the beginning of a window
  await sleep(1000 - (Date.now() % 1000) + 10)
  t.equal((await validateAs(app, 'guess')).statusCode, 401)
  t.equal((await validateAs(app, 'guess')).statusCode, 429)
  await sleep(1000 - (Date.now() % 1000) + 10)
  t.equal((await validateAs(app, 'guess')).statusCode, 401)
})

t.test('all three at 0 turn the limits off', async t => {
  const prefix = freshPrefix()
  const redis = inspector(t, redisUrl, prefix)
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { RATE_LIMIT_MAX: '0', RATE_LIMIT_FAILED_MAX: '0', RATE_LIMIT_CALLER_FAILED_MAX: '0' } })
  for (let i = 0; i < 50; i++) {
    const res = await validateAs(app, `guess-${i}`)
    t.equal(res.statusCode, 401)
    t.notOk(res.headers['x-ratelimit-limit'])
  }
  t.same(await keysUnder(redis, `${prefix}rl:`), [])
})

t.test('without SERVICE_API_KEYS the caller is its address (an IPv6 caller, its /64)', async t => {
  const prefix = freshPrefix()
  const redis = inspector(t, redisUrl, prefix)
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { RATE_LIMIT_MAX: '2' } })
  for (const address of ['10.1.1.1', '2001:db8:0:1::1']) {
    t.equal((await validateAs(app, 'guess', { from: address })).statusCode, 401)
    t.equal((await validateAs(app, 'guess', { from: address })).statusCode, 401)
    t.equal((await validateAs(app, 'guess', { from: address })).statusCode, 429, `${address} is over`)
  }
  t.equal((await validateAs(app, 'guess', { from: '10.1.1.2' })).statusCode, 401, 'a neighbour has its own budget')
  t.equal((await validateAs(app, 'guess', { from: '2001:db8:0:1::ffff' })).statusCode, 429, 'the same /64 shares one')
  await sleep(SYNC_EVERY_MS * 3)
  const names = (await keysUnder(redis, `${prefix}rl:req:`)).map(k => k.slice(0, k.lastIndexOf(':'))).sort()
  t.same(names, [`${prefix}rl:req:a:10.1.1.1`, `${prefix}rl:req:a:10.1.1.2`, `${prefix}rl:req:a:2001:db8:0:1::`])
})

t.test('Redis killed or frozen: the limiter counts in memory and the service keeps serving', async t => {
  const redis = await ownRedis(t)
  const prefix = freshPrefix()
  const inspect = inspector(t, redis.url, prefix)
  // an hour's window: the counts below must not meet a window's end (1 in ~60 runs with a minute's)
  const env = { RATE_LIMIT_MAX: '8', RATE_LIMIT_CALLER_FAILED_MAX: '3', RATE_LIMIT_WINDOW_MS: '3600000', REDIS_TIMEOUT_MS: '100', BREAKER_HALF_OPEN_AFTER_MS: '300', BREAKER_WINDOW_MS: '1000' }
  const { app, logs } = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix, env })
  const s = await createSession(db.sql, userId)
  t.equal((await validateAs(app, s.token)).statusCode, 200)
  for (const fault of ['kill', 'freeze'] as const) {
    if (fault === 'kill') await redis.kill()
    else redis.freeze()
    const [caller, guesser] = fault === 'kill' ? ['10.0.1.1', '10.0.1.2'] : ['10.0.2.1', '10.0.2.2']
    let slowest = 0
    const statuses: number[] = []
    for (let i = 0; i < 10; i++) {
      const start = performance.now()
      statuses.push((await validateAs(app, s.token, { from: caller })).statusCode)
      slowest = Math.max(slowest, performance.now() - start)
      await sleep(SYNC_EVERY_MS)
    }
    t.same(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 429, 429], `${fault}: served, and limited from memory`)
    t.ok(slowest < 1000, `${fault}: slowest answer ${slowest.toFixed(1)} ms`)
    t.ok(await fallbacks(app) > 0, `${fault}: decisions taken from memory are counted`)
    const guesses = []
    for (let i = 0; i < 5; i++) guesses.push((await validateAs(app, `guess-${fault}-${i}`, { from: guesser })).statusCode)
    t.same(guesses, [401, 401, 401, 429, 429], `${fault}: the failed-lookup budget holds in memory too`)
    if (fault === 'kill') await redis.start()
    else redis.thaw()
    await waitFor(`${fault}: the limiter counting in Redis again`, async () => {
      const before = await fallbacks(app)
      await validateAs(app, s.token, { from: '10.7.7.7' })
      return await fallbacks(app) === before
    }, 10_000, 100)
    await sleep(SYNC_EVERY_MS * 3)
    t.ok((await keysUnder(inspect, `${prefix}rl:req:a:10.7.7.7:`)).length > 0, `${fault}: counted in Redis`)
    await inspect.del(...await keysUnder(inspect, `${prefix}rl:`))
  }
  t.notOk(logs.join('').includes(`:${redis.port}`), 'no log line names the Redis address')
})

t.test('boots with Redis down and limits from memory until it is up', async t => {
  const redis = await ownRedis(t)
  await redis.kill()
  const prefix = freshPrefix()
  const start = performance.now()
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix, env: { RATE_LIMIT_MAX: '2' }, waitForCache: false })
  t.ok(performance.now() - start < 5000, 'start-up is not held up by the limiter')
  await waitFor('the epoch', () => app.sessions.epoch !== undefined)
  const s = await createSession(db.sql, userId)
  t.same([(await validateAs(app, s.token)).statusCode, (await validateAs(app, s.token)).statusCode, (await validateAs(app, s.token)).statusCode], [200, 200, 429])
  // three request-limit decisions, and the failed-lookup one of the first (uncached) validation
  t.equal(await fallbacks(app), 4)
})

t.test('the limits are configured like every other variable', async t => {
  const base = { DATABASE_URL: db.url }
  const config = loadConfig(base)
  t.same([config.rateLimitMax, config.rateLimitFailedMax, config.rateLimitCallerFailedMax, config.rateLimitWindowMs, config.trustedProxies],
    [0, 600, 60_000, 60_000, []], 'the request limit is off; the failed-lookup budgets are on')
  t.same(loadConfig({ ...base, TRUSTED_PROXIES: ' 10.0.0.0/8, ::1 ,2001:db8::/32' }).trustedProxies, ['10.0.0.0/8', '::1', '2001:db8::/32'])
  const bad: Array<[string, string]> = [
    ['RATE_LIMIT_MAX', '-1'], ['RATE_LIMIT_MAX', 'lots'], ['RATE_LIMIT_MAX', '1.5'],
    ['RATE_LIMIT_FAILED_MAX', 'x'], ['RATE_LIMIT_CALLER_FAILED_MAX', '-5'], ['RATE_LIMIT_WINDOW_MS', '10'], ['RATE_LIMIT_WINDOW_MS', '99999999999'],
    ['TRUSTED_PROXIES', 'proxy.internal'], ['TRUSTED_PROXIES', '10.0.0.0/33'], ['TRUSTED_PROXIES', '::1/129'], ['TRUSTED_PROXIES', '10.0.0.1/8/8']
  ]
  for (const [name, value] of bad) {
    let error: unknown
    try {
      loadConfig({ ...base, [name]: value })
    } catch (err) {
      error = err
    }
    t.ok(error instanceof ConfigError && error.variable === name && error.message.startsWith(`${name}: `), `${name}=${value} is refused, naming the variable`)
  }
})
