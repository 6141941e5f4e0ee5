import { readdir } from 'node:fs/promises'
import t from 'tap'
import { freshDatabase } from './helpers/postgres.js'
import { migrate } from '../src/migrate.js'

t.test('npm run migrate creates the tables; running it again changes nothing', async t => {
  const db = await freshDatabase(t) // migrated once already
  const tables = await db.sql<Array<{ table_schema: string, table_name: string }>>`
    SELECT table_schema, table_name FROM information_schema.tables
     WHERE table_schema IN ('platform', 'session_validator') ORDER BY 1, 2`
  t.same(tables.map(r => `${r.table_schema}.${r.table_name}`), [
    'platform.user_sessions', 'platform.users', 'session_validator.cache_epoch', 'session_validator.change_log_state',
    'session_validator.changes', 'session_validator.instances', 'session_validator.migrations'
  ])
  const columns = await db.sql<Array<{ column_name: string, is_nullable: string }>>`
    SELECT column_name, is_nullable FROM information_schema.columns
     WHERE table_schema = 'platform' AND table_name = 'user_sessions' ORDER BY ordinal_position`
  t.same(columns.map(c => c.column_name), ['id', 'user_id', 'token', 'expires_at', 'last_activity_at', 'created_at', 'ip_address', 'user_agent'])

  const snapshot = async () => await db.sql`
    SELECT (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal) AS triggers,
           (SELECT count(*) FROM session_validator.migrations) AS migrations,
           (SELECT epoch FROM session_validator.cache_epoch) AS epoch,
           (SELECT count(*) FROM pg_indexes WHERE schemaname = 'platform') AS indexes`
  const before = await snapshot()
  t.same(await migrate(db.sql), [], 'nothing to apply the second time')
  t.same(await snapshot(), before)
})

t.test('Studio\'s tables already there are left as they are', async t => {
  const db = await freshDatabase(t)
  await db.sql`INSERT INTO platform.users (email) VALUES ('kept@example.com')`
  await db.sql`DELETE FROM session_validator.migrations`
  const applied = await migrate(db.sql)
  const files = (await readdir(new URL('../migrations/', import.meta.url))).filter(f => f.endsWith('.sql'))
  t.equal(applied.length, files.length, 'every file re-applied cleanly over existing tables')
  t.equal((await db.sql`SELECT 1 FROM platform.users WHERE email = 'kept@example.com'`).length, 1)
})
