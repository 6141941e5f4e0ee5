import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { freePort, sleep } from '../helpers/ports.js'
import { startServer, waitForHttp, type ServerProcess } from '../helpers/process.js'

// Three real processes on one Redis and one Postgres. One of them is frozen
// (SIGSTOP) while a session it holds in memory is revoked through another:
// the revoke must return within the lease, and the frozen one, once woken,
// must not answer from its memory.
const LEASE_MS = 1000
const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)
const userId = await createUser(db.sql)

interface Instance { base: string, server: ServerProcess }
const instances: Instance[] = []
for (let i = 0; i < 3; i++) {
  const port = await freePort()
  const server = startServer(t, {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    SESSION_CACHE_PREFIX: prefix,
    LOCAL_CACHE_LEASE_MS: String(LEASE_MS),
    RATE_LIMIT_MAX: '0',
    RATE_LIMIT_FAILED_MAX: '0',
    LOG_LEVEL: 'warn'
  })
  instances.push({ base: `http://127.0.0.1:${port}`, server })
}
for (const { base } of instances) await waitForHttp(`${base}/readyz`)

async function validate (i: Instance, token: string) {
  const res = await fetch(`${i.base}/sessions/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) })
  return { status: res.status, cache: res.headers.get('x-session-cache'), tier: res.headers.get('x-session-cache-tier') }
}

// until each instance answers the session from its own memory
async function heldEverywhere (token: string): Promise<void> {
  for (const i of instances) {
    for (let attempt = 0; (await validate(i, token)).tier !== 'local'; attempt++) {
      if (attempt > 100) throw new Error('the session never reached memory')
      await sleep(20)
    }
  }
}

t.test('an instance frozen during a revoke: the revoke returns within the lease, the woken instance answers 401', async t => {
  const [via, , frozen] = instances as [Instance, Instance, Instance]
  for (const freezeMs of [300, 1500, 4000]) {
    const s = await createSession(db.sql, userId)
    await heldEverywhere(s.token)
    frozen.server.child.kill('SIGSTOP')
    const start = performance.now()
    const res = await fetch(`${via.base}/sessions/revoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: s.token }) })
    const took = performance.now() - start
    t.same(await res.json(), { revoked: 1 })
    // it waited for the frozen one's lease to run out, and not much longer
    t.ok(took >= LEASE_MS && took < LEASE_MS + 500, `frozen ${freezeMs} ms: the revoke returned in ${took.toFixed(0)} ms (lease ${LEASE_MS} ms)`)
    await sleep(Math.max(0, freezeMs - took))
    frozen.server.child.kill('SIGCONT')
    const first = await validate(frozen, s.token)
    t.equal(first.status, 401, `frozen ${freezeMs} ms: the first answer after waking is 401`)
    for (const i of instances) t.equal((await validate(i, s.token)).status, 401)
  }
})

t.test('a frozen instance that stays registered slows revokes only until its registration runs out', async t => {
  const [via, , frozen] = instances as [Instance, Instance, Instance]
  frozen.server.child.kill('SIGSTOP')
  const times: number[] = []
  for (let i = 0; i < 8; i++) {
    const s = await createSession(db.sql, userId)
    const start = performance.now()
    await fetch(`${via.base}/sessions/revoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: s.token }) })
    times.push(performance.now() - start)
  }
  frozen.server.child.kill('SIGCONT')
  t.ok(times[0]! >= LEASE_MS, `the first revoke waited out the lease (${times[0]!.toFixed(0)} ms)`)
  t.ok(times[times.length - 1]! < LEASE_MS / 2, `once its registration expired, revokes no longer wait (${times.map(x => x.toFixed(0)).join(', ')} ms)`)
})
