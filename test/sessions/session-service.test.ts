import t from 'tap'
import { pino } from 'pino'
import { loadConfig } from '../../src/config.js'
import { createMetrics } from '../../src/metrics.js'
import { createSessions } from '../../src/sessions/index.js'
import { tokenKey } from '../../src/token.js'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/ports.js'

// The session machinery as src/sessions/index.ts builds it, without Fastify:
// a validation reads memory, then Redis, then Postgres; a revoke reaches all
// three; close() closes what it opened.
const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)
const config = loadConfig({ DATABASE_URL: db.url, REDIS_URL: redisUrl, SESSION_CACHE_PREFIX: prefix })
const sessions = createSessions({ config, databaseUrl: db.url, metrics: createMetrics(), log: pino({ level: 'silent' }) })
t.teardown(() => sessions.close())
await waitFor('the shared cache to be read', () => sessions.coherence.sharedReadable())
await waitFor('the lease on memory', () => sessions.coherence.localServable())
const userId = await createUser(db.sql)

t.test('validate: Postgres on a miss, then memory; another instance\'s memory would read Redis', async t => {
  const s = await createSession(db.sql, userId)
  const first = await sessions.service.validate(tokenKey(s.token))
  if (first.status !== 'valid') throw new Error(`not valid: ${first.status}`)
  t.equal(first.cache, 'miss')
  t.match(JSON.parse(first.answer), { valid: true, session: { id: s.id, userId }, user: { id: userId } })
  const second = await sessions.service.validate(tokenKey(s.token))
  t.same([second.status, second.cache, second.tier], ['valid', 'hit', 'local'])
  t.equal(second.status === 'valid' && second.answer, first.answer, 'the same bytes')
  t.equal(sessions.service.fromMemory(tokenKey(s.token)), first.answer, 'and the hot path\'s synchronous read')
  sessions.local!.delete([tokenKey(s.token)])
  const third = await sessions.service.validate(tokenKey(s.token))
  t.same([third.status, third.cache, third.tier], ['valid', 'hit', 'redis'], 'memory emptied: Redis answers')
})

t.test('validate: unknown and expired tokens are answered as such, and cached nowhere', async t => {
  t.same(await sessions.service.validate(tokenKey('never-issued')), { status: 'not_found', cache: 'miss' })
  const expired = await createSession(db.sql, userId, { expiresInMs: -1000 })
  t.same(await sessions.service.validate(tokenKey(expired.token)), { status: 'expired', cache: 'miss' })
  t.equal(sessions.service.fromMemory(tokenKey(expired.token)), undefined)
})

t.test('revoke: the row, Redis and memory alike; the next validation is not_found', async t => {
  const s = await createSession(db.sql, userId)
  t.equal((await sessions.service.validate(tokenKey(s.token))).status, 'valid')
  t.equal(await sessions.service.revoke({ sessionId: s.id }), 1)
  t.equal(sessions.service.fromMemory(tokenKey(s.token)), undefined)
  t.same(await sessions.service.validate(tokenKey(s.token)), { status: 'not_found', cache: 'miss' })
})
