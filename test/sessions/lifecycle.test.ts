import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep } from '../helpers/ports.js'

// Idle timeout, sliding expiry, "your devices" and "sign out everywhere else",
// with windows shortened to seconds, on two instances sharing Redis and Postgres.
const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)

const RESOLUTION = 1
const lifecycle = {
  ACTIVITY_RESOLUTION_SECONDS: String(RESOLUTION),
  SESSION_IDLE_TIMEOUT_SECONDS: '3',
  SESSION_SLIDING_SECONDS: '3',
  SESSION_ABSOLUTE_MAX_SECONDS: '9'
}
const a = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: lifecycle })).app
const b = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: lifecycle })).app

// Validates through A every `everyMs` for `ms`; returns the statuses seen.
async function useThrough (app: FastifyInstance, token: string, ms: number, everyMs = 300): Promise<number[]> {
  const statuses: number[] = []
  const until = Date.now() + ms
  while (Date.now() < until) {
    statuses.push((await validate(app, token)).statusCode)
    await sleep(everyMs)
  }
  return statuses
}

t.test('idle timeout: a session used through A is not idle on B; unused, it is idle on both', async t => {
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId, { expiresInMs: 3_600_000 })
  t.same(new Set(await useThrough(a, s.token, 7000)), new Set([200]), 'used through A for twice the idle timeout: valid throughout')
  const onB = await validate(b, s.token)
  t.equal(onB.statusCode, 200, 'B, which never saw it, does not call it idle')
  // (a validation that answers valid is a use: nothing may ask in between)
  // idle once unused for the timeout plus the write-behind's lag, 2 resolutions + 1 s
  await sleep((3 + 2 * RESOLUTION + 1) * 1000 + 300)
  for (const app of [a, b]) {
    const res = await validate(app, s.token)
    t.equal(res.statusCode, 401)
    t.same(res.json(), { valid: false, reason: 'idle' }, 'unused past the bound: idle, from either instance and either cache tier')
  }
  const metrics = (await a.inject({ method: 'GET', url: '/metrics' })).payload
  t.match(metrics, /^session_validations_total\{result="idle",source="database"\} 1$/m)
})

t.test('sliding expiry: used, a session outlives its expires_at; unused, it expires; never past the maximum', async t => {
  const userId = await createUser(db.sql)
  const sliding = await createSession(db.sql, userId, { expiresInMs: 3000 })
  // alternate instances: each tier of each must serve the extended expiry
  const statuses: number[] = []
  const until = Date.now() + 6000
  for (let i = 0; Date.now() < until; i++) {
    statuses.push((await validate(i % 2 === 0 ? a : b, sliding.token)).statusCode)
    await sleep(250)
  }
  t.same(new Set(statuses), new Set([200]), `valid for 6 s though it was to expire after 3 (${statuses.length} validations, no spurious "expired")`)
  const [row] = await db.sql<Array<{ left: number }>>`SELECT extract(epoch FROM expires_at - now())::float8 AS left FROM platform.user_sessions WHERE id = ${sliding.id}`
  t.ok(row!.left > 1, `expires_at moved forward (${row!.left.toFixed(1)} s left)`)
  // unused (a valid answer is a use: nothing may ask meanwhile), it expires
  // within the sliding window plus the write-behind's lag
  await sleep((3 + RESOLUTION) * 1000 + 500)
  t.equal((await validate(b, sliding.token)).json().reason, 'expired', 'expired once unused')
  t.equal((await validate(a, sliding.token)).json().reason, 'expired', 'on both instances')

  const capped = await createSession(db.sql, userId, { expiresInMs: 3000 })
  const seen = await useThrough(a, capped.token, 11_000)
  t.ok(seen.includes(200), 'valid while used...')
  t.equal(seen.at(-1), 401, '...until the absolute maximum (9 s after created_at), however it is used')
  const [capRow] = await db.sql<Array<{ over: number }>>`SELECT extract(epoch FROM expires_at - created_at)::float8 AS over FROM platform.user_sessions WHERE id = ${capped.id}`
  t.ok(capRow!.over <= 9.001, `expires_at never past created_at + 9 s (${capRow!.over.toFixed(2)} s)`)
})

t.test('GET /users/:id/sessions: live sessions, newest activity first, paginated, never a token', async t => {
  const userId = await createUser(db.sql)
  const other = await createUser(db.sql)
  const sessions = []
  for (let i = 0; i < 5; i++) sessions.push(await createSession(db.sql, userId, { userAgent: `device-${i}` }))
  await createSession(db.sql, userId, { expiresInMs: -1000 })
  await createSession(db.sql, other)
  const idle = await createSession(db.sql, userId)
  // activity in a known order, all within the idle timeout but one
  for (const [i, ago] of [[0, 4], [1, 1], [2, 3], [3, 0], [4, 2]] as const) {
    await db.sql`UPDATE platform.user_sessions SET last_activity_at = now() - ${ago} * interval '1 second' WHERE id = ${sessions[i]!.id}`
  }
  await db.sql`UPDATE platform.user_sessions SET last_activity_at = now() - interval '1 minute' WHERE id = ${idle.id}`
  const list = (query: string) => a.inject({ method: 'GET', url: `/users/${userId}/sessions${query}` })

  const all = await list('')
  t.equal(all.statusCode, 200)
  const body = all.json()
  t.equal(body.next, null)
  t.same(body.sessions.map((s: { userAgent: string }) => s.userAgent), ['device-3', 'device-1', 'device-4', 'device-2', 'device-0'], 'newest activity first')
  t.notOk(body.sessions.some((s: { id: string }) => s.id === idle.id), 'an idle session is not listed, nor an expired one, nor another user\'s')
  t.same(Object.keys(body.sessions[0]).sort(), ['createdAt', 'expiresAt', 'id', 'ipAddress', 'lastActivityAt', 'userAgent'])
  for (const s of sessions) {
    t.notOk(all.payload.includes(s.token), 'no token')
    t.notOk(all.payload.includes(s.digest), 'no token hash')
  }

  const seen: string[] = []
  let cursor: string | null = ''
  let pages = 0
  while (cursor !== null) {
    const page = await list(`?limit=2${cursor === '' ? '' : `&cursor=${cursor}`}`)
    t.equal(page.statusCode, 200, page.payload)
    const p = page.json()
    t.ok(p.sessions.length <= 2)
    seen.push(...p.sessions.map((s: { id: string }) => s.id))
    cursor = p.next
    pages++
  }
  t.equal(pages, 3, 'five sessions in pages of two')
  t.same(seen, body.sessions.map((s: { id: string }) => s.id), 'pages follow one another with nothing skipped or repeated')

  for (const bad of ['?limit=0', '?limit=101', '?cursor=bm9wZQ', '?other=1']) t.equal((await list(bad)).statusCode, 400, bad)
  t.equal((await a.inject({ method: 'GET', url: '/users/not-a-uuid/sessions' })).statusCode, 400)
})

t.test('sign out everywhere else: every other session is revoked on every instance, the kept one stays valid and cached', async t => {
  for (const by of ['token', 'sessionId'] as const) {
    const userId = await createUser(db.sql)
    const current = await createSession(db.sql, userId)
    const others = [await createSession(db.sql, userId), await createSession(db.sql, userId), await createSession(db.sql, userId)]
    for (const app of [a, b]) for (const s of [current, ...others]) await validate(app, s.token)
    let stale = 0
    let returned = Infinity
    const racing = [a, b].map(async app => {
      for (let n = 0; n < 40; n++) {
        for (const s of others) {
          const startedAt = performance.now()
          const res = await validate(app, s.token)
          if (startedAt > returned && res.statusCode === 200) stale++
        }
        await new Promise(resolve => setImmediate(resolve))
      }
    })
    const keep = by === 'token' ? { token: current.token } : { sessionId: current.id }
    const res = await a.inject({ method: 'POST', url: `/users/${userId}/sessions/revoke`, payload: { keep } })
    returned = performance.now()
    t.same(res.json(), { revoked: 3 }, `keep by ${by}`)
    await Promise.all(racing)
    t.equal(stale, 0, 'no revoked session answered valid after the call returned')
    for (const app of [a, b]) {
      for (const s of others) t.equal((await validate(app, s.token)).statusCode, 401)
      const kept = await validate(app, current.token)
      t.equal(kept.statusCode, 200, 'the kept session is still valid')
      t.equal(kept.headers['x-session-cache'], 'hit', 'and still cached')
    }
  }
})

t.test('keep input rules: clear 400s that change nothing', async t => {
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId)
  for (const payload of [{ keep: {} }, { keep: { token: s.token, sessionId: s.id } }, { keep: { sessionId: 'nope' } }, { keep: { token: 'a b' } }, { other: 1 }]) {
    t.equal((await a.inject({ method: 'POST', url: `/users/${userId}/sessions/revoke`, payload })).statusCode, 400, JSON.stringify(payload))
  }
  t.equal((await validate(a, s.token)).statusCode, 200, 'nothing was revoked')
})

t.test('a sliding window no longer than twice the activity resolution is refused at start', async t => {
  const { loadConfig } = await import('../../src/config.js')
  t.throws(() => loadConfig({ ACTIVITY_RESOLUTION_SECONDS: '60', SESSION_SLIDING_SECONDS: '120' }), /SESSION_SLIDING_SECONDS: must be more than twice ACTIVITY_RESOLUTION_SECONDS/)
  t.equal(loadConfig({ ACTIVITY_RESOLUTION_SECONDS: '60', SESSION_SLIDING_SECONDS: '121' }).sessionSlidingSeconds, 121)
})
