import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { startSentinels } from '../helpers/redis-topologies.js'
import { Redis } from 'ioredis'
import { contractChecks, failoverUnderLoad } from '../helpers/contract.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep, waitFor } from '../helpers/ports.js'

const db = await freshDatabase(t)
const set = await startSentinels(t)
const env = {
  REDIS_SENTINELS: set.hosts,
  REDIS_SENTINEL_MASTER: 'svmaster',
  REDIS_TIMEOUT_MS: '300',
  BREAKER_HALF_OPEN_AFTER_MS: '500',
  BREAKER_WINDOW_MS: '2000'
}

t.test('on Redis Sentinel (1 master, 1 replica, 3 sentinels)', async t => {
  await contractChecks(t, db, env)
})

t.test('the master killed under load', async t => {
  await failoverUnderLoad(t, db, env, () => set.master.kill())
})

t.test('a failover that lost an acknowledged invalidation serves no revoked session', async t => {
  // The replication link is down while the master acknowledges a revoke's DEL
  // and tombstone; the master then dies with them, and the replica, promoted,
  // still holds the entry. Only noticing the new server (and moving the
  // epoch) keeps the revoked session out.
  const fresh = await startSentinels(t, 'svlost')
  const lostEnv = { ...env, REDIS_SENTINELS: fresh.hosts, REDIS_SENTINEL_MASTER: 'svlost' }
  const { app } = await testApp(t, { databaseUrl: db.url, env: lostEnv })
  const userId = await createUser(db.sql)
  const revoked = await createSession(db.sql, userId)
  const live = await createSession(db.sql, userId)
  for (const s of [revoked, live]) {
    await validate(app, s.token)
    t.equal((await validate(app, s.token)).headers['x-session-cache'], 'hit')
  }
  const onReplica = new Redis({ port: fresh.replica.port, host: '127.0.0.1' })
  t.teardown(() => onReplica.disconnect())
  const key = `session:{${revoked.digest}}`
  await waitFor('the entry on the replica', async () => await onReplica.exists(key) === 1)
  onReplica.disconnect()

  // Freeze the replica and drop its link from the master's side: what the
  // master acknowledges next stays in its backlog and dies with it.
  fresh.replica.child.kill('SIGSTOP')
  const onMaster = new Redis({ port: fresh.master.port, host: '127.0.0.1' })
  await onMaster.call('CLIENT', 'KILL', 'TYPE', 'replica')
  onMaster.disconnect()
  t.same((await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: revoked.token } })).json(), { revoked: 1 })
  // let the delete's notification be applied (acknowledged) on the master too
  await sleep(300)
  await fresh.master.kill()
  fresh.replica.child.kill('SIGCONT')

  const promoted = new Redis({ port: fresh.replica.port, host: '127.0.0.1' })
  t.teardown(() => promoted.disconnect())
  await waitFor('the replica promoted', async () => (await promoted.role())[0] === 'master', 30_000, 200)
  t.equal(await promoted.exists(key), 1, 'the promoted replica still holds the revoked entry')
  await waitFor('hits again after the failover', async () =>
    (await validate(app, live.token)).headers['x-session-cache'] === 'hit', 30_000, 100)
  t.equal((await validate(app, revoked.token)).statusCode, 401, 'the revoked session stays revoked')
})
