import t from 'tap'
import type { InjectOptions } from 'fastify'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, keysUnder, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'

const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
const redis = inspector(t, redisUrl, prefix)
const { app, logs } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix })
const userId = await createUser(db.sql, { email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace', username: 'ada' })

t.test('a valid token in the body: 200 with session and user, a miss then a hit', async t => {
  const s = await createSession(db.sql, userId, { ipAddress: '192.0.2.1', userAgent: 'curl/8' })
  const first = await validate(app, s.token)
  t.equal(first.statusCode, 200)
  t.equal(first.headers['x-session-cache'], 'miss')
  const body = first.json()
  t.equal(body.valid, true)
  t.equal(body.session.id, s.id)
  t.equal(body.session.userId, userId)
  t.equal(body.session.ipAddress, '192.0.2.1')
  t.equal(body.session.userAgent, 'curl/8')
  t.equal(body.session.lastActivityAt, null)
  t.match(body.session.expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.match(body.session.createdAt, /^\d{4}-\d\d-\d\dT/)
  t.same(body.user, { id: userId, email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace', username: 'ada' })

  const second = await validate(app, s.token)
  t.equal(second.statusCode, 200)
  t.equal(second.headers['x-session-cache'], 'hit')
  t.same(second.json(), body, 'a hit answers exactly what the miss answered')
})

t.test('a valid token as Authorization: Bearer', async t => {
  const s = await createSession(db.sql, userId)
  const res = await app.inject({ method: 'POST', url: '/sessions/validate', headers: { authorization: `Bearer ${s.token}` } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().session.id, s.id)
  const lower = await app.inject({ method: 'POST', url: '/sessions/validate', headers: { authorization: `bearer ${s.token}` } })
  t.equal(lower.statusCode, 200, 'the scheme is case-insensitive')
})

t.test('unknown and expired tokens are 401 with a reason', async t => {
  const unknown = await validate(app, 'never-issued-token')
  t.equal(unknown.statusCode, 401)
  t.same(unknown.json(), { valid: false, reason: 'not_found' })

  const expired = await createSession(db.sql, userId, { expiresInMs: -1000 })
  const res = await validate(app, expired.token)
  t.equal(res.statusCode, 401)
  t.same(res.json(), { valid: false, reason: 'expired' })
  t.equal(await redis.exists(`${prefix}{${expired.digest}}`), 0, 'an expired session is not cached')
})

t.test('no negative entries: unknown tokens leave nothing in Redis', async t => {
  // the rate limiter's counters (rl:) come and go with their window; cache keys must not
  const cacheKeys = async () => (await keysUnder(redis, prefix)).filter(k => !k.startsWith(`${prefix}rl:`)).sort()
  const before = await cacheKeys()
  for (let i = 0; i < 20; i++) await validate(app, `unknown-${i}`)
  t.same(await cacheKeys(), before)
})

t.test('input rules', async t => {
  const s = await createSession(db.sql, userId)
  const cases: Array<[string, InjectOptions, number]> = [
    ['neither body nor header', { method: 'POST', url: '/sessions/validate' }, 400],
    ['empty object', { method: 'POST', url: '/sessions/validate', payload: {} }, 400],
    ['both body and header', { method: 'POST', url: '/sessions/validate', payload: { token: s.token }, headers: { authorization: `Bearer ${s.token}` } }, 400],
    ['empty token', { method: 'POST', url: '/sessions/validate', payload: { token: '' } }, 400],
    ['513 characters', { method: 'POST', url: '/sessions/validate', payload: { token: 'a'.repeat(513) } }, 400],
    ['a space inside', { method: 'POST', url: '/sessions/validate', payload: { token: 'ab cd' } }, 400],
    ['a control character', { method: 'POST', url: '/sessions/validate', payload: { token: 'ab\u0001cd' } }, 400],
    ['non-ASCII', { method: 'POST', url: '/sessions/validate', payload: { token: 'caf\u00e9' } }, 400],
    ['a number, not a string', { method: 'POST', url: '/sessions/validate', payload: { token: 12345 } }, 400],
    ['an unknown field', { method: 'POST', url: '/sessions/validate', payload: { token: s.token, extra: 1 } }, 400],
    ['not JSON', { method: 'POST', url: '/sessions/validate', payload: '{"token": ' + s.token, headers: { 'content-type': 'application/json' } }, 400],
    ['another scheme', { method: 'POST', url: '/sessions/validate', headers: { authorization: `Basic ${s.token}` } }, 400],
    ['Bearer with nothing', { method: 'POST', url: '/sessions/validate', headers: { authorization: 'Bearer ' } }, 400],
    ['a body over 4 KiB', { method: 'POST', url: '/sessions/validate', payload: { token: 'a'.repeat(5000) } }, 413]
  ]
  for (const [name, request, status] of cases) {
    const res = await app.inject(request)
    t.equal(res.statusCode, status, name)
    const body = res.json()
    t.equal(body.statusCode, status, `${name}: Fastify's error shape`)
    t.type(body.message, 'string')
    t.notOk(res.payload.includes(s.token), `${name}: the token is not echoed`)
  }
  const ok = await validate(app, 'a'.repeat(512))
  t.equal(ok.statusCode, 401, '512 visible characters are a well-formed token')
})

t.test('the cache entry never outlives expires_at and always has a TTL', async t => {
  const s = await createSession(db.sql, userId, { expiresInMs: 10_000 })
  const res = await validate(app, s.token)
  t.equal(res.statusCode, 200)
  const pttl = await redis.pttl(`${prefix}{${s.digest}}`)
  t.ok(pttl > 0 && pttl <= 10_000, `TTL ${pttl} ms is capped at the 10 s left`)
  const long = await createSession(db.sql, userId, { expiresInMs: 86_400_000 })
  await validate(app, long.token)
  const longTtl = await redis.pttl(`${prefix}{${long.digest}}`)
  t.ok(longTtl > 3_890_000 && longTtl <= 3_900_000, `TTL ${longTtl} ms is capped at SESSION_CACHE_TTL_SECONDS + SESSION_CACHE_STALE_SECONDS`)
})

t.test('a cached session past its expires_at is not served as valid', async t => {
  const s = await createSession(db.sql, userId, { expiresInMs: 1200 })
  t.equal((await validate(app, s.token)).statusCode, 200)
  await new Promise(resolve => setTimeout(resolve, 1300))
  const res = await validate(app, s.token)
  t.equal(res.statusCode, 401)
  t.same(res.json(), { valid: false, reason: 'expired' })
})

t.test('concurrent misses for one token cost one Postgres query', async t => {
  const s = await createSession(db.sql, userId)
  const before = await queryCount()
  const answers = await Promise.all(Array.from({ length: 25 }, () => validate(app, s.token)))
  t.ok(answers.every(a => a.statusCode === 200))
  t.equal(await queryCount() - before, 1)
})

t.test('no key without a TTL, and neither token nor digest in the logs', async t => {
  const keys = await keysUnder(redis, prefix)
  t.ok(keys.length > 0)
  for (const key of keys) t.ok(await redis.pttl(key) > 0, `${key} has a TTL`)
  const all = logs.join('')
  const rows = await db.sql<Array<{ token: string }>>`SELECT token FROM platform.user_sessions`
  for (const { token } of rows) t.notOk(all.includes(token), 'no digest in the logs')
  t.notOk(all.includes('never-issued-token'))
})

async function queryCount (): Promise<number> {
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  const line = metrics.payload.split('\n').find(l => l.startsWith('db_query_duration_seconds_count{query="find_session"}'))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

t.test('long and non-ASCII values round-trip through the cache, whose entry is one string smaller than the answer', async t => {
  const ua = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 — ünïcødé 🚀'.repeat(2)
  const name = 'Zoë 🚀'.repeat(20)
  const uid = await createUser(db.sql, { email: `${'long'.repeat(30)}@example.com`, firstName: name, lastName: '', username: 'ü'.repeat(40) })
  const s = await createSession(db.sql, uid, { userAgent: ua, ipAddress: '2001:db8:85a3:0000:0000:8a2e:0370:7334' })
  const miss = await validate(app, s.token)
  const hit = await validate(app, s.token)
  t.equal(hit.headers['x-session-cache'], 'hit')
  t.same(hit.json(), miss.json())
  t.equal(hit.json().session.userAgent, ua)
  t.equal(hit.json().user.firstName, name)
  t.equal(hit.json().user.lastName, '', 'an empty string stays an empty string, not null')
  t.equal(await redis.type(`${prefix}{${s.digest}}`), 'string')
  const stored = await redis.strlen(`${prefix}{${s.digest}}`)
  t.ok(stored < Buffer.byteLength(hit.payload), `${stored} bytes stored for a ${Buffer.byteLength(hit.payload)}-byte answer`)
})

t.test('misses arriving together share one Postgres query, each with its own answer', async t => {
  const live = await Promise.all(Array.from({ length: 12 }, () => createSession(db.sql, userId)))
  const expired = await createSession(db.sql, userId, { expiresInMs: -1000 })
  const before = await queryCount()
  const answers = await Promise.all([
    ...live.map(s => validate(app, s.token)),
    validate(app, expired.token),
    validate(app, 'never-issued-together')
  ])
  t.equal(await queryCount() - before, 1, '14 different misses, one query')
  live.forEach((s, i) => {
    t.equal(answers[i]!.statusCode, 200)
    t.equal(answers[i]!.json().session.id, s.id, 'each answer is its own session')
  })
  t.same(answers[12]!.json(), { valid: false, reason: 'expired' })
  t.same(answers[13]!.json(), { valid: false, reason: 'not_found' })
})

async function redisCalls (command: string): Promise<number> {
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  const line = metrics.payload.split('\n').find(l => l.startsWith(`redis_command_duration_seconds_count{command="${command}"}`))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

t.test('a cold fill is one Redis call: entry, tombstone check and user index in one script', async t => {
  const uid = await createUser(db.sql)
  const s = await createSession(db.sql, uid)
  const [fills, indexAdds] = [await redisCalls('fill'), await redisCalls('index_add')]
  t.equal((await validate(app, s.token)).headers['x-session-cache'], 'miss')
  t.equal(await redisCalls('fill') - fills, 1, 'one call')
  t.equal(await redisCalls('index_add') - indexAdds, 0, 'no second one on a single Redis')
  t.ok(await redis.pttl(`${prefix}{${s.digest}}`) > 0, 'the entry, with its TTL')
  t.not(await redis.zscore(`${prefix}user:{${uid}}`, Buffer.from(s.digest, 'hex')), null, 'named in the user index')
  t.ok(await redis.pttl(`${prefix}user:{${uid}}`) > 0, 'which has a TTL too')
})
