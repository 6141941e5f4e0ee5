import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/ports.js'

const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)
const instances = [
  await testApp(t, { databaseUrl: db.url, redisUrl, prefix }),
  await testApp(t, { databaseUrl: db.url, redisUrl, prefix }),
  await testApp(t, { databaseUrl: db.url, redisUrl, prefix })
].map(i => i.app)

// Traffic spread round-robin, as a load balancer would.
let next = 0
const anyInstance = () => instances[next++ % instances.length]!

t.test('three instances: revocation and Postgres-side changes hold on every one', async t => {
  const userId = await createUser(db.sql, { email: 'before@example.com' })
  const sessions = await Promise.all(Array.from({ length: 9 }, () => createSession(db.sql, userId)))
  for (let round = 0; round < 3; round++) {
    for (const s of sessions) t.equal((await validate(anyInstance(), s.token)).statusCode, 200)
  }
  const [byApi, bySql, ...rest] = sessions
  t.same((await anyInstance().inject({ method: 'POST', url: '/sessions/revoke', payload: { sessionId: byApi!.id } })).json(), { revoked: 1 })
  for (const app of instances) t.equal((await validate(app, byApi!.token)).statusCode, 401, 'revoked: rejected at once')

  await db.sql`DELETE FROM platform.user_sessions WHERE id = ${bySql!.id}`
  await db.sql`UPDATE platform.users SET email = 'after@example.com' WHERE id = ${userId}`
  const start = Date.now()
  await waitFor('every instance to see both changes', async () => {
    for (const app of instances) {
      if ((await validate(app, bySql!.token)).statusCode !== 401) return false
      for (const s of rest) if ((await validate(app, s.token)).json().user?.email !== 'after@example.com') return false
    }
    return true
  }, 1000, 20)
  t.ok(Date.now() - start < 1000, `seen everywhere within ${Date.now() - start} ms`)

  t.same((await anyInstance().inject({ method: 'POST', url: `/users/${userId}/sessions/revoke` })).json(), { revoked: rest.length })
  for (const app of instances) for (const s of rest) t.equal((await validate(app, s.token)).statusCode, 401)
})
