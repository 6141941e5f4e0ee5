import t from 'tap'
import { startPrimaryWithReplica } from '../helpers/postgres-replica.js'
import { quietSql } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep, waitFor } from '../helpers/ports.js'
import { migrate } from '../../src/migrate.js'

const pg = await startPrimaryWithReplica(t)
const primary = quietSql(pg.primaryUrl, 2)
const replica = quietSql(pg.replicaUrl, 2)
t.teardown(async () => {
  await primary.end({ timeout: 1 })
  await replica.end({ timeout: 1 })
})
await migrate(primary)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)
const { app } = await testApp(t, {
  databaseUrl: pg.primaryUrl,
  redisUrl,
  prefix,
  env: { DATABASE_READ_URL: pg.replicaUrl, DATABASE_READ_MAX_LAG_MS: '3000' }
})

async function counts () {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).payload
  const count = (query: string) => Number(text.split('\n').find(l => l.startsWith(`db_query_duration_seconds_count{query="${query}"}`))?.split(' ')[1] ?? 0)
  return { primary: count('find_session'), replica: count('replica_find_session') }
}
async function replicated (id: string): Promise<void> {
  await waitFor('the replica to replay', async () => (await replica`SELECT 1 FROM platform.user_sessions WHERE id = ${id}`).length === 1, 10_000, 20)
}
const userId = await createUser(primary)
await sleep(3500) // past the hold-off after the user's creation and the first lag probes

t.test('a miss reads the replica when it is caught up', async t => {
  const s = await createSession(primary, userId)
  await replicated(s.id)
  const before = await counts()
  const res = await validate(app, s.token)
  t.equal(res.statusCode, 200)
  const after = await counts()
  t.equal(after.replica - before.replica, 1, 'read from the replica')
  t.equal(after.primary - before.primary, 0, 'the primary was not asked')
  t.equal((await validate(app, s.token)).headers['x-session-cache'], 'hit')
})

t.test('with replay paused, a session created a moment ago is confirmed on the primary: valid', async t => {
  await replica`SELECT pg_wal_replay_pause()`
  t.teardown(async () => { await replica`SELECT pg_wal_replay_resume()` })
  const s = await createSession(primary, userId)
  const before = await counts()
  const res = await validate(app, s.token)
  t.equal(res.statusCode, 200, 'never 401 because the replica lags')
  const after = await counts()
  t.equal(after.primary - before.primary, 1, 'confirmed on the primary')
  t.equal((await replica`SELECT 1 FROM platform.user_sessions WHERE id = ${s.id}`).length, 0, 'the replica really did not have it')
})

t.test('a session revoked while the replica still has it is rejected', async t => {
  const s = await createSession(primary, userId)
  await replicated(s.id)
  await sleep(3100)
  await replica`SELECT pg_wal_replay_pause()`
  t.teardown(async () => { await replica`SELECT pg_wal_replay_resume()` })
  t.same((await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })).json(), { revoked: 1 })
  t.equal((await replica`SELECT 1 FROM platform.user_sessions WHERE id = ${s.id}`).length, 1, 'the replica still holds the row')
  for (let i = 0; i < 5; i++) t.equal((await validate(app, s.token)).statusCode, 401)
})

t.test('a replica lagging past DATABASE_READ_MAX_LAG_MS is not read', async t => {
  await replica`SELECT pg_wal_replay_pause()`
  t.teardown(async () => { await replica`SELECT pg_wal_replay_resume()` })
  await createSession(primary, userId) // something for the replica to fall behind on
  await sleep(3700)
  const s = await createSession(primary, userId)
  const before = await counts()
  t.equal((await validate(app, s.token)).statusCode, 200)
  const after = await counts()
  t.equal(after.replica - before.replica, 0, 'the replica was skipped')
  t.equal(after.primary - before.primary, 1)
})

t.test('a stale replica answer is vetoed by the revoke\'s tombstone even where the revoke was not notified', async t => {
  const s = await createSession(primary, userId)
  await replicated(s.id)
  await replica`SELECT pg_wal_replay_pause()`
  t.teardown(async () => { await replica`SELECT pg_wal_replay_resume()` })
  t.same((await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: s.token } })).json(), { revoked: 1 })
  // An instance that starts after the revoke, once the fleet's watermark has
  // moved past it (claims come about once a second), never hears of it — not
  // even in its catch-up — and trusts a replica up to a minute behind: only
  // the tombstone stands in the way.
  await sleep(2500)
  const late = await testApp(t, {
    databaseUrl: pg.primaryUrl,
    redisUrl,
    prefix,
    env: { DATABASE_READ_URL: pg.replicaUrl, DATABASE_READ_MAX_LAG_MS: '60000' }
  })
  await sleep(600)
  const metricsBefore = (await late.app.inject({ method: 'GET', url: '/metrics' })).payload
  t.equal((await validate(late.app, s.token)).statusCode, 401)
  const metricsAfter = (await late.app.inject({ method: 'GET', url: '/metrics' })).payload
  const confirmations = (text: string) => Number(text.split('\n').find(l => l.startsWith('db_replica_confirmations_total'))?.split(' ')[1] ?? 0)
  const replicaReads = (text: string) => Number(text.split('\n').find(l => l.startsWith('db_query_duration_seconds_count{query="replica_find_session"}'))?.split(' ')[1] ?? 0)
  t.equal(replicaReads(metricsAfter) - replicaReads(metricsBefore), 1, 'the replica was read (and still had the row)')
  t.equal(confirmations(metricsAfter) - confirmations(metricsBefore), 1, 'its answer was confirmed on the primary')
})
