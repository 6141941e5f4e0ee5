import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { createMetrics } from '../../src/metrics.js'
import { createSql } from '../../src/db/postgres.js'
import { createLimiter } from '../../src/db/limiter.js'
import { createSessionStore } from '../../src/sessions/session-store.js'
import { freshDatabase } from '../helpers/postgres.js'
import { createSession, createUser } from '../helpers/fixtures.js'

// The store's factory on a real Postgres: lookups batched per event-loop
// turn, the warm-up's existence check, activity writes, the listing's pages.
const db = await freshDatabase(t)
const config = loadConfig({ DATABASE_URL: db.url })
const sql = createSql(config, db.url)
t.teardown(() => sql.end({ timeout: 1 }))
const metrics = createMetrics()
const store = createSessionStore(sql, createLimiter(config.databasePoolMax, config.databaseQueueMax), metrics, config.databaseQueryTimeoutMs)

async function lookups (): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString('db_query_duration_seconds')
  const line = text.split('\n').find(l => l.startsWith('db_query_duration_seconds_count{query="find_session"}'))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

t.test('findByDigest: the session and its user, or undefined; one query for the lookups of a turn', async t => {
  const userId = await createUser(db.sql)
  const sessions = await Promise.all([1, 2, 3].map(() => createSession(db.sql, userId)))
  const before = await lookups()
  const [a, b, c, none] = await Promise.all([...sessions.map(s => store.findByDigest(s.digest)), store.findByDigest('0'.repeat(64))])
  t.equal(await lookups() - before, 1, 'four lookups in one turn, one query')
  t.same([a?.id, b?.id, c?.id], sessions.map(s => s.id))
  t.equal(a?.userId, userId)
  t.type(a?.expiresAt, 'number')
  t.equal(a?.ipAddress, '10.0.0.1')
  t.equal(none, undefined)
})

t.test('existing: which of these sessions are still there', async t => {
  const userId = await createUser(db.sql)
  const kept = await createSession(db.sql, userId)
  const gone = await createSession(db.sql, userId)
  await db.sql`DELETE FROM platform.user_sessions WHERE id = ${gone.id}`
  t.same([...await store.existing([kept.id, gone.id])], [kept.id])
  t.same([...await store.existing([])], [])
})

t.test('writeActivity stamps last_activity_at; listSessions pages newest activity first', async t => {
  const userId = await createUser(db.sql)
  const older = await createSession(db.sql, userId)
  const newer = await createSession(db.sql, userId)
  t.equal(await store.writeActivity([older.id]), 1)
  t.equal(await store.writeActivity([newer.id]), 1)
  const [row] = await db.sql`SELECT last_activity_at FROM platform.user_sessions WHERE id = ${newer.id}`
  t.ok(row!.last_activity_at instanceof Date, 'stamped')
  const first = await store.listSessions(userId, 1, undefined, undefined)
  t.same(first.map(s => s.id), [newer.id])
  const next = await store.listSessions(userId, 1, { activityUs: first[0]!.activityUs, id: first[0]!.id }, undefined)
  t.same(next.map(s => s.id), [older.id])
  t.same(await store.listSessions(userId, 1, { activityUs: next[0]!.activityUs, id: next[0]!.id }, undefined), [])
})
