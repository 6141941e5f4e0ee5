import t from 'tap'
import { Redis } from 'ioredis'
import { freshDatabase } from '../helpers/postgres.js'
import { ownRedis } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'

// A full Redis never resurrects a revoked session, whatever it evicts: a real
// redis-server at a small maxmemory, kept evicting by filler writes, while
// sessions are validated (fills) and revoked through another instance, under
// each eviction policy. Every revoked session must be 401 on both instances.
const db = await freshDatabase(t)
const userId = await createUser(db.sql)
const POLICIES = ['allkeys-lru', 'allkeys-lfu', 'allkeys-random', 'volatile-ttl']
const ROUNDS = 60

for (const policy of POLICIES) {
  t.test(`maxmemory-policy ${policy}, evicting: no revoked session answered valid`, async t => {
    const store = await ownRedis(t, ['--maxmemory', '2mb', '--maxmemory-policy', policy])
    const filler = new Redis(store.url)
    t.teardown(() => filler.disconnect())
    const a = (await testApp(t, { databaseUrl: db.url, redisUrl: store.url, prefix: 'session:' })).app
    const b = (await testApp(t, { databaseUrl: db.url, redisUrl: store.url, prefix: 'session:' })).app
    const filling = { on: true }
    const fill = (async () => {
      // 1 KB values with a TTL (volatile-* evicts only those), ~2 MB a second
      for (let i = 0; filling.on; i++) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => filler.set(`filler:${i}:${j}`, 'x'.repeat(1024), 'EX', 600)))
        await new Promise(resolve => setTimeout(resolve, 25))
      }
    })()
    let wrong = 0
    for (let i = 0; i < ROUNDS; i++) {
      const s = await createSession(db.sql, userId)
      // a fill racing the revoke: a miss on a, the revoke through b at once
      const miss = validate(a, s.token)
      const revoked = await b.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })
      t.equal(revoked.statusCode, 200)
      await miss
      for (const app of [a, b, a]) if ((await validate(app, s.token)).statusCode !== 401) wrong++
    }
    filling.on = false
    await fill
    const evicted = Number(/evicted_keys:(\d+)/.exec(await filler.info('stats'))?.[1])
    t.ok(evicted > 0, `Redis evicted ${evicted} keys meanwhile`)
    t.equal(wrong, 0, `no valid answer for a revoked session in ${ROUNDS} races`)
  })
}
