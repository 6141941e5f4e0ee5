import { randomBytes } from 'node:crypto'
import t from 'tap'
import { SYNC_EVERY_MS } from '../../src/limits/shared-counter.js'
import type { FastifyInstance } from 'fastify'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, keysUnder, ownRedis } from '../helpers/redis.js'
import { testApp } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep } from '../helpers/ports.js'

// A caller sprays random tokens. Nothing it sends is stored (no negative
// entries), and the caller's failed-lookup budget caps what it costs Postgres.
const FAILED_MAX = 50
const FLOOD = 3000
const CONCURRENCY = 20

const db = await freshDatabase(t)
const redis = await ownRedis(t)
const prefix = freshPrefix()
const inspect = inspector(t, redis.url, prefix)
const attacker = `attacker-${randomBytes(16).toString('hex')}`
const studio = `studio-${randomBytes(16).toString('hex')}`
const { app } = await testApp(t, {
  databaseUrl: db.url,
  redisUrl: redis.url,
  prefix,
  // A generous Redis timeout: on a loaded test machine a slow answer would move
  // the counting to this instance's memory, which starts from zero (by design,
  // see rate-limit.test.ts) and would blur the bound measured here.
  env: { SERVICE_API_KEYS: `${attacker},${studio}`, RATE_LIMIT_CALLER_FAILED_MAX: String(FAILED_MAX), RATE_LIMIT_MAX: '100000', RATE_LIMIT_WINDOW_MS: '3600000', REDIS_TIMEOUT_MS: '1000' }
})
const userId = await createUser(db.sql)

function validateAs (key: string, token: string) {
  return app.inject({ method: 'POST', url: '/sessions/validate', payload: { token }, headers: { 'x-api-key': key } })
}

async function findQueries (app: FastifyInstance): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).payload
  const line = text.split('\n').find(l => l.startsWith('db_query_duration_seconds_count{query="find_session"}'))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

async function fallbacks (): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).payload
  const line = text.split('\n').find(l => l.startsWith('rate_limit_store_fallback_total '))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

async function usedMemory (): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await inspect.info('memory'))![1])
}

t.test('a flood of random unknown tokens: Redis stays flat, Postgres load stays bounded', async t => {
  // Warm up: scripts loaded, the attacker's counters exist, a real session cached.
  const s = await createSession(db.sql, userId)
  t.equal((await validateAs(studio, s.token)).statusCode, 200)
  t.equal((await validateAs(attacker, 'warm-up-guess')).statusCode, 401)
  await sleep(SYNC_EVERY_MS * 3) // the limiter's counters reach Redis in the background
  const keysBefore = (await keysUnder(inspect, prefix)).sort()
  const sizeBefore = await inspect.dbsize()
  const memoryBefore = await usedMemory()
  const queriesBefore = await findQueries(app)

  const statuses = new Map<number, number>()
  for (let sent = 0; sent < FLOOD; sent += CONCURRENCY) {
    const batch = await Promise.all(Array.from({ length: CONCURRENCY }, () =>
      validateAs(attacker, randomBytes(32).toString('base64url'))))
    for (const res of batch) statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
  }
  const queries = await findQueries(app) - queriesBefore
  const memoryAfter = await usedMemory()
  t.comment(`statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${queries} Postgres lookups, ` +
    `used_memory ${memoryBefore} -> ${memoryAfter} bytes`)

  t.same([...statuses.keys()].sort(), [401, 429], 'every answer is 401 or 429, never 5xx, never 200')
  t.equal(await fallbacks(), 0, 'every limit was counted in Redis')
  // the budget is read before a lookup and counted after it, so at most one
  // batch of concurrent guesses can slip past it
  const bound = FAILED_MAX + CONCURRENCY
  t.ok(statuses.get(401)! <= bound, `${statuses.get(401)} guesses answered (budget ${FAILED_MAX} + ${CONCURRENCY} in flight)`)
  t.ok(queries <= bound, `${queries} Postgres lookups for ${FLOOD} guesses`)

  t.same((await keysUnder(inspect, prefix)).sort(), keysBefore, 'no key was added under the prefix')
  t.equal(await inspect.dbsize(), sizeBefore, 'nor anywhere in Redis')
  // 3000 negative entries would take several hundred KB; counters and client
  // buffers move by a few KB at most
  t.ok(memoryAfter - memoryBefore < 64 * 1024, `used_memory grew by ${memoryAfter - memoryBefore} bytes`)

  const during = await validateAs(studio, s.token)
  t.equal(during.statusCode, 200, 'another caller is not throttled by the flood')
  t.equal(during.headers['x-session-cache'], 'hit')
})
