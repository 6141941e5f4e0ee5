import t from 'tap'
import { randomUUID } from 'node:crypto'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { heldFill } from '../helpers/held-fill.js'

const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
const redis = inspector(t, redisUrl, prefix)
const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix })

const revoke = (payload: object) => app.inject({ method: 'POST', url: '/sessions/revoke', payload })
const revokeAll = (userId: string) => app.inject({ method: 'POST', url: `/users/${userId}/sessions/revoke` })

t.test('POST /sessions/revoke by token deletes the row and the cache entry', async t => {
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId)
  t.equal((await validate(app, s.token)).statusCode, 200)
  t.equal((await validate(app, s.token)).headers['x-session-cache'], 'hit')
  const res = await revoke({ token: s.token })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { revoked: 1 })
  t.equal((await db.sql`SELECT 1 FROM platform.user_sessions WHERE id = ${s.id}`).length, 0)
  t.equal(await redis.exists(`${prefix}{${s.digest}}`), 0)
  const after = await validate(app, s.token)
  t.equal(after.statusCode, 401)
  t.same(after.json(), { valid: false, reason: 'not_found' })
  t.same((await revoke({ token: s.token })).json(), { revoked: 0 }, 'a second revoke finds nothing')
})

t.test('POST /sessions/revoke by session id', async t => {
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId)
  await validate(app, s.token)
  t.same((await revoke({ sessionId: s.id.toUpperCase() })).json(), { revoked: 1 })
  t.equal((await validate(app, s.token)).statusCode, 401)
  t.same((await revoke({ sessionId: randomUUID() })).json(), { revoked: 0 })
})

t.test('revoke input rules: clear 400s that change nothing', async t => {
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId)
  for (const payload of [{}, { token: s.token, sessionId: s.id }, { sessionId: 'not-a-uuid' }, { token: '' }, { token: 'a b' }, { token: s.token, other: 1 }]) {
    const res = await revoke(payload)
    t.equal(res.statusCode, 400, JSON.stringify(Object.keys(payload)))
    t.notOk(res.payload.includes(s.token))
  }
  t.equal((await app.inject({ method: 'POST', url: '/users/not-a-uuid/sessions/revoke' })).statusCode, 400)
  t.equal((await validate(app, s.token)).statusCode, 200, 'the session is untouched')
})

t.test('POST /users/:id/sessions/revoke revokes cached and uncached sessions alike', async t => {
  const userId = await createUser(db.sql)
  const other = await createUser(db.sql)
  const cached = [await createSession(db.sql, userId), await createSession(db.sql, userId)]
  const uncached = await createSession(db.sql, userId)
  const bystander = await createSession(db.sql, other)
  for (const s of [...cached, bystander]) await validate(app, s.token)
  t.equal(await redis.zcard(`${prefix}user:{${userId}}`), 2, 'the per-user index names the cached entries')

  const res = await revokeAll(userId)
  t.same(res.json(), { revoked: 3 })
  for (const s of [...cached, uncached]) t.equal((await validate(app, s.token)).statusCode, 401)
  t.equal((await validate(app, bystander.token)).statusCode, 200, 'another user is not touched')
  t.equal(await redis.zcard(`${prefix}user:{${userId}}`), 0, 'the index no longer names them')
  t.same((await revokeAll(randomUUID())).json(), { revoked: 0 })
})

t.test('no resurrection: a fill held between its read and its write never brings a revoked session back', async t => {
  // The classic race, driven on purpose: a miss reads the row, the revoke
  // deletes row and entry, then the miss writes. Many rounds, zero stale answers.
  const userId = await createUser(db.sql)
  let stale = 0
  const rounds = 40
  const hold = heldFill()
  const racing = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, beforeFill: hold.beforeFill })
  for (let i = 0; i < rounds; i++) {
    const s = await createSession(db.sql, userId)
    const atFill = hold.next()
    const miss = validate(racing.app, s.token)
    await atFill
    // through the other instance, while the fill is held
    const revoked = await revoke(i % 2 === 0 ? { token: s.token } : { sessionId: s.id })
    t.same(revoked.json(), { revoked: 1 })
    hold.release()
    const first = await miss
    t.equal(first.statusCode, 200, 'the held miss answers what it read before the revoke')
    for (const instance of [app, racing.app]) {
      const res = await validate(instance, s.token)
      if (res.statusCode !== 401) stale++
    }
    t.equal(await redis.exists(`${prefix}{${s.digest}}`), 0, 'no entry was written back')
  }
  t.equal(stale, 0, `zero stale valid answers in ${rounds} rounds`)
})

t.test('no resurrection when Redis evicts the tombstone: the fill lease the revoke deleted refuses the held fill', async t => {
  // What a full Redis may do under any maxmemory policy, done on purpose: the
  // revoke's tombstone is gone before the held fill lands.
  const userId = await createUser(db.sql)
  const hold = heldFill()
  const racing = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, beforeFill: hold.beforeFill })
  const s = await createSession(db.sql, userId)
  const atFill = hold.next()
  const miss = validate(racing.app, s.token)
  await atFill
  t.equal(await redis.exists(`${prefix}{${s.digest}}:fill`), 1, 'the miss took a fill lease before reading Postgres')
  t.same((await revoke({ token: s.token })).json(), { revoked: 1 })
  t.equal(await redis.exists(`${prefix}{${s.digest}}:fill`), 0, 'the revoke deleted the lease')
  t.equal(await redis.del(`${prefix}{${s.digest}}:revoked`), 1, 'the tombstone, evicted')
  hold.release()
  t.equal((await miss).statusCode, 200, 'the held miss answers what it read before the revoke')
  t.equal(await redis.exists(`${prefix}{${s.digest}}`), 0, 'no entry was written back')
  for (const instance of [app, racing.app]) t.equal((await validate(instance, s.token)).statusCode, 401)
})

t.test('revoke-all while a fill of that user is held', async t => {
  const userId = await createUser(db.sql)
  const hold = heldFill()
  const racing = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, beforeFill: hold.beforeFill })
  const s = await createSession(db.sql, userId)
  const atFill = hold.next()
  const miss = validate(racing.app, s.token)
  await atFill
  t.same((await revokeAll(userId)).json(), { revoked: 1 })
  hold.release()
  await miss
  t.equal((await validate(app, s.token)).statusCode, 401)
  t.equal((await validate(racing.app, s.token)).statusCode, 401)
})
