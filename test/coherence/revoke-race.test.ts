import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser, type TestSession } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/ports.js'

// Three instances, each holding the session in memory, validating it as fast
// as they can while it is revoked through one of them. A validation that
// starts after the revoke returned must never answer valid, on any instance.
const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)
const userId = await createUser(db.sql)
// thousands of requests from one caller: the limits are not what is tested here
const env = { RATE_LIMIT_MAX: '0', RATE_LIMIT_FAILED_MAX: '0' }
const apps = [
  (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })).app,
  (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })).app,
  (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })).app
]

interface Race { stale: number, after: number, localHitsBefore: number, revokeMs: number }

async function race (s: TestSession, revoke: () => Promise<unknown>): Promise<Race> {
  let localHitsBefore = 0
  for (const app of apps) {
    await validate(app, s.token)
    if ((await validate(app, s.token)).headers['x-session-cache-tier'] === 'local') localHitsBefore++
  }
  let returnedAt = Infinity
  let stale = 0
  let after = 0
  const state = { running: true }
  const hammer = async (app: FastifyInstance) => {
    // keeps going until every instance has answered a few times after the return
    for (let afterReturn = 0; afterReturn < 3;) {
      const startedAt = performance.now()
      const res = await validate(app, s.token)
      if (startedAt > returnedAt) {
        afterReturn++
        after++
        if (res.statusCode !== 401) stale++
      }
      if (!state.running) break
      // as separate HTTP requests would: let I/O and timers run in between
      await new Promise(resolve => setImmediate(resolve))
    }
  }
  const hammers = apps.map(hammer)
  const start = performance.now()
  await revoke()
  returnedAt = performance.now()
  const revokeMs = returnedAt - start
  const done = Promise.all(hammers)
  setTimeout(() => { state.running = false }, 5000).unref()
  await done
  return { stale, after, localHitsBefore, revokeMs }
}

const ROUNDS = 200
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!

t.test('200 rounds: validate on every instance while revoking through one, zero valid answers after it returned', async t => {
  let stale = 0
  let after = 0
  let fromMemory = 0
  const latencies: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const s = await createSession(db.sql, userId)
    const via = apps[i % apps.length]!
    const kind = i % 3
    const r = await race(s, () => kind === 0
      ? via.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })
      : kind === 1
        ? via.inject({ method: 'POST', url: '/sessions/revoke', payload: { sessionId: s.id } })
        : via.inject({ method: 'POST', url: `/users/${userId}/sessions/revoke` }))
    stale += r.stale
    after += r.after
    fromMemory += r.localHitsBefore
    latencies.push(r.revokeMs)
  }
  t.equal(fromMemory, ROUNDS * apps.length, 'every instance held the session in memory before each revoke')
  t.ok(after >= ROUNDS * apps.length * 3, `${after} validations started after a revoke returned`)
  t.equal(stale, 0, 'none of them answered valid')
  t.comment(`revoke latency under that load (3 instances in one process): p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms`)
  t.ok(Math.max(...latencies) < 1000, 'no revoke waited out the lease: every instance acknowledged')
})

t.test('revoke latency with every instance healthy (the bench measures it across processes)', async t => {
  const latencies: number[] = []
  for (let i = 0; i < 100; i++) {
    const s = await createSession(db.sql, userId)
    for (const app of apps) await validate(app, s.token)
    const start = performance.now()
    const res = await apps[i % apps.length]!.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })
    latencies.push(performance.now() - start)
    t.same(res.json(), { revoked: 1 })
  }
  t.comment(`revoke latency, 3 healthy idle instances in one process: p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms`)
  t.ok(Math.max(...latencies) < 1000, 'every revoke was acknowledged, none waited out the lease')
})

t.test('with one instance\'s invalidation connection killed: still zero valid answers, and the revoke returns within the lease', async t => {
  let stale = 0
  for (let i = 0; i < 20; i++) {
    const s = await createSession(db.sql, userId)
    const victim = apps[2]!
    const r = await race(s, async () => {
      await db.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE application_name = ${`session-validator-listener ${victim.coherence.id}`}`
      return await apps[0]!.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })
    })
    stale += r.stale
    t.ok(r.revokeMs < 1000 + 500, `round ${i + 1}: the revoke returned in ${r.revokeMs.toFixed(0)} ms`)
    await waitFor('the victim to hold its lease again', () => victim.coherence.localServable(), 10_000)
  }
  t.equal(stale, 0, 'no valid answer after any revoke returned')
})
