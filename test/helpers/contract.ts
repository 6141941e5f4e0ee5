import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { TestDatabase } from './postgres.js'
import { testApp, validate } from './app.js'
import { createSession, createUser, type TestSession } from './fixtures.js'
import { sleep, waitFor } from './ports.js'
import { heldFill } from './held-fill.js'

type Tap = Test

// The guarantees every Redis deployment must keep, run against one of them.
export async function contractChecks (t: Tap, db: TestDatabase, env: Record<string, string>): Promise<void> {
  const a = await testApp(t, { databaseUrl: db.url, env })
  const b = await testApp(t, { databaseUrl: db.url, env })
  const userId = await createUser(db.sql)

  await t.test('validate: a miss, then a hit on either instance', async t => {
    const s = await createSession(db.sql, userId)
    t.equal((await validate(a.app, s.token)).headers['x-session-cache'], 'miss')
    t.equal((await validate(a.app, s.token)).headers['x-session-cache'], 'hit')
    t.equal((await validate(b.app, s.token)).headers['x-session-cache'], 'hit')
  })

  await t.test('revoke and revoke-all hold on both instances', async t => {
    const s = await createSession(db.sql, userId)
    await validate(a.app, s.token)
    t.same((await a.app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })).json(), { revoked: 1 })
    t.equal((await validate(b.app, s.token)).statusCode, 401)
    const other = await createUser(db.sql)
    const many = [await createSession(db.sql, other), await createSession(db.sql, other), await createSession(db.sql, other)]
    for (const m of many.slice(0, 2)) await validate(b.app, m.token)
    t.same((await b.app.inject({ method: 'POST', url: `/users/${other}/sessions/revoke` })).json(), { revoked: 3 })
    for (const m of many) {
      t.equal((await validate(a.app, m.token)).statusCode, 401)
      t.equal((await validate(b.app, m.token)).statusCode, 401)
    }
  })

  await t.test('no resurrection with a held fill', async t => {
    const hold = heldFill()
    const racing = await testApp(t, { databaseUrl: db.url, env, beforeFill: hold.beforeFill })
    let stale = 0
    for (let i = 0; i < 10; i++) {
      const s = await createSession(db.sql, userId)
      const atFill = hold.next()
      const miss = validate(racing.app, s.token)
      await atFill
      await a.app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })
      hold.release()
      await miss
      for (const app of [a.app, b.app, racing.app]) if ((await validate(app, s.token)).statusCode !== 401) stale++
    }
    t.equal(stale, 0)
  })

  await t.test('after an epoch move the shared cache is warmed with the most recently active sessions', async t => {
    const s = await createSession(db.sql, userId)
    await db.sql`UPDATE platform.user_sessions SET last_activity_at = now() WHERE id = ${s.id}`
    const warmed = async () => {
      let n = 0
      for (const { app } of [a, b]) n += Number(/^session_cache_warmed_total (\d+)/m.exec((await app.inject({ method: 'GET', url: '/metrics' })).payload)?.[1] ?? 0)
      return n
    }
    const before = await warmed()
    await db.sql`UPDATE session_validator.cache_epoch SET epoch = epoch + 1`
    await waitFor('a warm-up', async () => await warmed() > before, 15_000, 100)
    const observer = await testApp(t, { databaseUrl: db.url, env: { ...env, LOCAL_CACHE_MAX_ENTRIES: '0' } })
    t.equal((await validate(observer.app, s.token)).headers['x-session-cache-tier'], 'redis', 'a hit on its first request')
  })

  await t.test('/healthz/redis is healthy', async t => {
    const res = await a.app.inject({ method: 'GET', url: '/healthz/redis' })
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.equal(body.status, 'healthy')
    t.equal(body.redis.connected, true)
    t.ok(body.redis.totalKeys > 0)
    t.notMatch(res.payload, /127\.0\.0\.1|password/)
  })
}

// Kills a master under traffic: every answer stays right (Postgres answers
// meanwhile) and the cache comes back after the failover.
export async function failoverUnderLoad (t: Tap, db: TestDatabase, env: Record<string, string>, killMaster: () => Promise<void>): Promise<void> {
  const { app } = await testApp(t, { databaseUrl: db.url, env })
  // without a memory cache: its hits can only come from Redis
  const peer = await testApp(t, { databaseUrl: db.url, env: { ...env, LOCAL_CACHE_MAX_ENTRIES: '0' } })
  const userId = await createUser(db.sql)
  const live: TestSession[] = []
  const revoked: TestSession[] = []
  for (let i = 0; i < 12; i++) live.push(await createSession(db.sql, userId))
  for (let i = 0; i < 6; i++) revoked.push(await createSession(db.sql, userId))
  for (const s of [...live, ...revoked]) await validate(app, s.token)
  for (const s of revoked) await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })

  let wrong = 0
  let answered = 0
  const state = { stop: false }
  const traffic = (async () => {
    for (let i = 0; !state.stop && i < 100_000; i++) {
      const s = i % 3 === 0 ? revoked[i % revoked.length]! : live[i % live.length]!
      const res = await validate(app as FastifyInstance, s.token)
      answered++
      if (res.statusCode !== (revoked.includes(s) ? 401 : 200)) wrong++
      await sleep(2)
    }
  })()
  await sleep(500)
  const epochBefore = BigInt(app.sessions.epoch!)
  await killMaster()
  try {
    await waitFor('the new master noticed, and Redis hits after the failover', async () => {
      if (BigInt(app.sessions.epoch!) <= epochBefore) return false
      const results = await Promise.all(live.map(s => validate(peer.app, s.token)))
      return results.every(r => r.headers['x-session-cache-tier'] === 'redis')
    }, 30_000, 250)
  } finally {
    state.stop = true
    await traffic
  }
  t.ok(answered > 100, `${answered} answers during the failover`)
  t.equal(wrong, 0, 'no wrong answer while the master died and the slots moved')
  t.ok(BigInt(app.sessions.epoch!) > epochBefore, 'the new master was noticed and the epoch moved')
  for (const s of revoked) t.equal((await validate(app, s.token)).statusCode, 401)
}
