import t from 'tap'
import { expectedSchema } from '../../src/doctor/expected-schema.js'
import { readMigrations } from '../../src/migrate.js'

t.test('the migrations of this repository: their tables and triggers', async t => {
  const expected = expectedSchema(await readMigrations())
  t.same(expected.migrations.slice(0, 2), ['001_platform_tables.sql', '002_cache_invalidation.sql'], 'the files, in order')
  for (const table of ['platform.users', 'platform.user_sessions', 'session_validator.cache_epoch']) t.ok(expected.tables.includes(table), table)
  for (const trigger of ['session_validator_deleted', 'session_validator_updated', 'session_validator_user_changed', 'session_validator_epoch_changed']) {
    t.ok(expected.triggers.some(tr => tr.name === trigger), trigger)
  }
})

t.test('read from the SQL in order: a later migration can drop or add; comments and function bodies do not count', async t => {
  const expected = expectedSchema([
    {
      name: '001.sql',
      sql: `-- CREATE TRIGGER commented_out AFTER DELETE ON platform.x
        CREATE TABLE IF NOT EXISTS platform.a (id int);
        CREATE TABLE "Platform"."B" (id int);
        CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN EXECUTE 'CREATE TRIGGER inside_a_body AFTER DELETE ON platform.a'; RETURN NULL; END $$;
        DROP TRIGGER IF EXISTS t1 ON platform.a;
        CREATE TRIGGER t0 AFTER INSERT ON platform.a FOR EACH ROW EXECUTE FUNCTION f();
        CREATE TRIGGER "T1" AFTER UPDATE OF id, "on" ON "Platform"."B" FOR EACH ROW EXECUTE FUNCTION f();
        create trigger t2 after delete on platform.a for each row execute function f();
        /* CREATE TRIGGER in_a_block_comment AFTER DELETE ON platform.a */`
    },
    {
      name: '002.sql',
      sql: `DROP TRIGGER t2 ON platform.a;
        CREATE OR REPLACE TRIGGER t3 AFTER INSERT ON platform.b FOR EACH ROW EXECUTE FUNCTION f();
        DROP TABLE IF EXISTS platform.a;
        CREATE TABLE unqualified (id int);`
    }
  ])
  t.same(expected.migrations, ['001.sql', '002.sql'])
  t.same(expected.tables.sort(), ['Platform.B', 'public.unqualified'], 'names folded as Postgres folds them')
  t.same(expected.triggers, [{ name: 'T1', table: 'Platform.B' }, { name: 't3', table: 'platform.b' }], 't0 went with its table, t2 was dropped')
})
