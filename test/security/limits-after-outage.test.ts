import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, ownRedis } from '../helpers/redis.js'
import { testApp } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep } from '../helpers/ports.js'

// The 429 storm after an outage: counts kept in memory while Redis was away
// must not land in a fresh window. A caller within its budgets (about 480
// failed lookups a minute against 600, spread over two instances) is never
// refused: not during a 60 s Redis outage, not in the minute after it.
const OUTAGE_MS = Number(process.env.OUTAGE_MS ?? 60_000)
t.setTimeout(OUTAGE_MS * 2 + 120_000)

const db = await freshDatabase(t)
const redis = await ownRedis(t)
const prefix = freshPrefix()
const env = { RATE_LIMIT_CALLER_FAILED_MAX: '600', RATE_LIMIT_MAX: '100000', REDIS_TIMEOUT_MS: '100' }
const a = (await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix, env })).app
const b = (await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix, env })).app
const userId = await createUser(db.sql)
const cached = await createSession(db.sql, userId)

interface Tally { sent: number, refused: number, failed: number }

// 4 unknown tokens and 4 valid validations a second on each instance: 480
// failed lookups a minute for the caller, 960 requests.
async function traffic (ms: number, tally: Tally): Promise<void> {
  const until = performance.now() + ms
  let n = 0
  while (performance.now() < until) {
    const round = (app: FastifyInstance) => Promise.all([
      app.inject({ method: 'POST', url: '/sessions/validate', payload: { token: `guess-${n++}` } }),
      app.inject({ method: 'POST', url: '/sessions/validate', payload: { token: cached.token } })
    ])
    for (const res of [...await round(a), ...await round(b)]) {
      tally.sent++
      if (res.statusCode === 429) tally.refused++
      else if (res.statusCode !== 200 && res.statusCode !== 401) tally.failed++
    }
    await sleep(250)
  }
}

t.test('a 60 s Redis outage under in-budget traffic: zero 429s during it and in the minute after', async t => {
  const before: Tally = { sent: 0, refused: 0, failed: 0 }
  await traffic(5000, before)
  t.equal(before.refused, 0, 'in budget before')

  await redis.kill()
  const during: Tally = { sent: 0, refused: 0, failed: 0 }
  await traffic(OUTAGE_MS, during)
  await redis.start()

  const after: Tally = { sent: 0, refused: 0, failed: 0 }
  await traffic(60_000, after)
  t.comment(`during the outage: ${JSON.stringify(during)}; the minute after: ${JSON.stringify(after)}`)
  t.equal(during.refused, 0, 'no 429 while Redis was away (each instance counted in memory)')
  t.equal(after.refused, 0, 'no 429 in the minute after Redis returned')
  t.equal(during.failed + after.failed, 0, 'every answer 200 or 401')
  t.ok(after.sent > 800, `${after.sent} requests after the outage`)
})
