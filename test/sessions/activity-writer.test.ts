import t from 'tap'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep, waitFor } from '../helpers/ports.js'

const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)

// Counts UPDATE statements on user_sessions as Postgres sees them.
await db.sql.unsafe(`
  CREATE TABLE update_statements (n int NOT NULL);
  INSERT INTO update_statements VALUES (0);
  CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN UPDATE update_statements SET n = n + 1; RETURN NULL; END $$;
  CREATE TRIGGER count_update AFTER UPDATE ON platform.user_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION count_update();`)
const statements = async () => (await db.sql<Array<{ n: number }>>`SELECT n FROM update_statements`)[0]!.n
const activityOf = async (id: string) =>
  (await db.sql<Array<{ at: Date | null }>>`SELECT last_activity_at AS at FROM platform.user_sessions WHERE id = ${id}`)[0]!.at

t.test('last_activity_at is written behind: one statement per flush, at most one write per session per resolution', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { ACTIVITY_RESOLUTION_SECONDS: '2' } })
  const userId = await createUser(db.sql)
  const x = await createSession(db.sql, userId)
  const y = await createSession(db.sql, userId)
  const before = await statements()
  // both first seen together, so that no flush (every 200 ms) can fall
  // between them on a loaded machine
  const firsts = await Promise.all([validate(app, x.token), validate(app, y.token)])
  t.same(firsts.map(r => r.statusCode), [200, 200])
  for (let i = 0; i < 49; i++) {
    t.equal((await validate(app, x.token)).statusCode, 200)
    t.equal((await validate(app, y.token)).statusCode, 200)
  }
  await waitFor('the flush', async () => (await activityOf(x.id)) !== null && (await activityOf(y.id)) !== null, 5000, 50)
  const afterFirst = await statements()
  t.equal(afterFirst - before, 1, '100 validations, two sessions: one UPDATE')
  const first = (await activityOf(x.id))!.getTime()

  // Within the resolution, more traffic writes nothing more.
  for (let i = 0; i < 20; i++) await validate(app, x.token)
  await sleep(1200)
  t.equal(await statements(), afterFirst, 'no second write inside the resolution')

  // After it (between one and two resolutions), traffic is written again.
  await waitFor('the second flush', async () => {
    await validate(app, x.token)
    return (await activityOf(x.id))!.getTime() > first
  }, 8000, 100)
  t.equal(await statements() - afterFirst, 1, 'one more UPDATE after the resolution')
  // queued at least a resolution apart; each written at its flush, up to 1 s later
  t.ok((await activityOf(x.id))!.getTime() - first >= 1000, 'not sooner than the resolution allows')
})

t.test('pending activity is flushed on shutdown', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { ACTIVITY_RESOLUTION_SECONDS: '3600' } })
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId)
  await validate(app, s.token)
  t.equal(await activityOf(s.id), null, 'not written yet')
  await app.close()
  t.not(await activityOf(s.id), null, 'written by close')
})

t.test('the activity write does not invalidate cached entries', async t => {
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env: { ACTIVITY_RESOLUTION_SECONDS: '1' } })
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId)
  await validate(app, s.token)
  await waitFor('the flush', async () => (await activityOf(s.id)) !== null, 5000, 50)
  await sleep(100)
  t.equal((await validate(app, s.token)).headers['x-session-cache'], 'hit')
})
