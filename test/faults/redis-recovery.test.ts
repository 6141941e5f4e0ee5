import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, ownRedis } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep, waitFor } from '../helpers/ports.js'
import { sample, scrape } from '../helpers/promql.js'

// The circuit closes as soon as Redis answers again (a background PING probes
// it while open), not after BREAKER_HALF_OPEN_AFTER_MS; and while Redis is
// still away no request pays a timeout for a trial.

const TIMEOUT_MS = 200
// An answer this slow waited for the Redis timeout; a Postgres miss on
// loopback takes a few milliseconds.
const WAITED_MS = TIMEOUT_MS * 0.9

const db = await freshDatabase(t)
const userId = await createUser(db.sql)
// memory off: a cached session must be answered by Redis, so that the
// outage is met by every request
const NO_MEMORY = { LOCAL_CACHE_MAX_ENTRIES: '0' }

interface Outage { requests: number, waited: number, waitedAfterOpen: number, openedAfter: number | undefined, openedAtMs: number | undefined }

// Validations at ~40/s for `ms`, counting those that waited for a timeout,
// before and after the circuit opened. Every answer must still be right.
async function underOutage (t: Test, app: FastifyInstance, token: string, ms: number): Promise<Outage> {
  const out: Outage = { requests: 0, waited: 0, waitedAfterOpen: 0, openedAfter: undefined, openedAtMs: undefined }
  const began = performance.now()
  const until = Date.now() + ms
  while (Date.now() < until) {
    const start = performance.now()
    const res = await validate(app, token)
    const took = performance.now() - start
    out.requests++
    if (res.statusCode !== 200) t.fail(`answered ${res.statusCode} during the outage`)
    if (took >= WAITED_MS) {
      out.waited++
      if (out.openedAfter !== undefined) out.waitedAfterOpen++
    }
    if (out.openedAfter === undefined && app.cacheClient!.circuit === 'open') {
      out.openedAfter = out.requests
      out.openedAtMs = Math.round(performance.now() - began)
    }
    await sleep(20)
  }
  return out
}

// From Redis answering again to the circuit closing with no traffic at all,
// then to the first cache hit.
async function recovery (app: FastifyInstance, token: string) {
  const back = performance.now()
  await waitFor('the circuit to close with no request sent', () => app.cacheClient!.circuit === 'closed', 10_000, 10)
  const closedMs = performance.now() - back
  await waitFor('a cache hit', async () => (await validate(app, token)).headers['x-session-cache'] === 'hit', 10_000, 10)
  return { closedMs, hitMs: performance.now() - back }
}

t.test('Redis killed and restarted: refused at once while down, hits again within ~2 s, with the default 30 s BREAKER_HALF_OPEN_AFTER_MS', async t => {
  const redis = await ownRedis(t)
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix: freshPrefix(), env: { ...NO_MEMORY, REDIS_TIMEOUT_MS: String(TIMEOUT_MS) } })
  const s = await createSession(db.sql, userId)
  await validate(app, s.token)
  t.equal((await validate(app, s.token)).headers['x-session-cache'], 'hit')

  await redis.kill()
  const outage = await underOutage(t, app, s.token, 3000)
  t.comment(`killed for 3 s: ${JSON.stringify(outage)}`)
  t.ok(outage.openedAfter !== undefined, 'the circuit opened')
  // a closed connection refuses at once; one allowed for a stray pause of a loaded machine
  t.ok(outage.waited <= 1, `${outage.waited} requests waited for a timeout`)

  await redis.start()
  const { closedMs, hitMs } = await recovery(app, s.token)
  t.comment(`after the restart: circuit closed in ${closedMs.toFixed(0)} ms with no traffic, first hit after ${hitMs.toFixed(0)} ms`)
  t.ok(hitMs < 2000, `the cache is used again ${hitMs.toFixed(0)} ms after Redis returned (BREAKER_HALF_OPEN_AFTER_MS is 30000)`)
})

t.test('Redis frozen and thawed: no trial costs a request a timeout while frozen, hits again within ~2 s of SIGCONT', async t => {
  const redis = await ownRedis(t)
  // A short BREAKER_HALF_OPEN_AFTER_MS: with cockatiel's plain wait, every
  // 300 ms one request would be the trial and wait out the timeout.
  const env = { ...NO_MEMORY, REDIS_TIMEOUT_MS: String(TIMEOUT_MS), BREAKER_HALF_OPEN_AFTER_MS: '300', BREAKER_WINDOW_MS: '2000' }
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix: freshPrefix(), env })
  const s = await createSession(db.sql, userId)
  await validate(app, s.token)
  t.equal((await validate(app, s.token)).headers['x-session-cache'], 'hit')

  redis.freeze()
  const outage = await underOutage(t, app, s.token, 4000)
  t.comment(`frozen for 4 s: ${JSON.stringify(outage)}`)
  t.ok(outage.openedAfter !== undefined, 'the circuit opened')
  // it judges the failure ratio over its window, successes from before the
  // freeze included, which age out of it by 2 s: each request until it opens
  // waits out the timeout (500 ms more for a loaded machine)
  t.ok(outage.openedAtMs! <= 2000 + TIMEOUT_MS + 500, `the circuit opened ${outage.openedAtMs} ms after the freeze (its window: 2000 ms)`)
  // one allowed, as above; a trial every 300 ms would be ~10
  t.ok(outage.waitedAfterOpen <= 1, `${outage.waitedAfterOpen} waited once the circuit was open (of ${outage.requests - (outage.openedAfter ?? 0)})`)

  redis.thaw()
  const { closedMs, hitMs } = await recovery(app, s.token)
  t.comment(`after SIGCONT: circuit closed in ${closedMs.toFixed(0)} ms with no traffic, first hit after ${hitMs.toFixed(0)} ms`)
  t.ok(hitMs < 2000, `the cache is used again ${hitMs.toFixed(0)} ms after SIGCONT`)
})

t.test('a circuit that reopens right after closing waits longer before each next trial', async t => {
  const redis = await ownRedis(t)
  const env = { ...NO_MEMORY, REDIS_TIMEOUT_MS: String(TIMEOUT_MS), BREAKER_HALF_OPEN_AFTER_MS: '2000', BREAKER_WINDOW_MS: '1000' }
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix: freshPrefix(), env })
  const s = await createSession(db.sql, userId)
  await validate(app, s.token)
  // Redis answers PING, but the cache's reads fail: GET is taken away.
  await (async () => {
    const { Redis } = await import('ioredis')
    const admin = new Redis(redis.url)
    await admin.acl('SETUSER', 'default', '-get')
    admin.disconnect()
  })()
  // Counted from circuit_breaker_open_total, which misses no transition:
  // a sampled state would miss a close that lasts less than one loop.
  const opensAt: number[] = []
  const opens = async (): Promise<number> => sample(await scrape(app), 'circuit_breaker_open_total{dependency="redis"}')
  let last = await opens()
  // 8 s: the background calls of the coherence protocol may be the trial too
  const until = Date.now() + 8000
  let wrong = 0
  while (Date.now() < until) {
    if ((await validate(app, s.token)).statusCode !== 200) wrong++
    const now = await opens()
    if (now > last) opensAt.push(Date.now())
    last = now
    await sleep(10)
  }
  t.equal(wrong, 0, 'every answer came from Postgres meanwhile')
  const gaps = opensAt.slice(1).map((at, i) => at - opensAt[i]!)
  t.comment(`opened ${opensAt.length} times in 8 s (each reopen follows a close); gaps ${gaps.join(', ')} ms`)
  t.ok(opensAt.length >= 2 && opensAt.length <= 10, 'it keeps trying, but not at the probe rate (that would be ~32)')
  t.ok(gaps.length < 2 || gaps.at(-1)! > gaps[0]!, 'with growing waits')
})
