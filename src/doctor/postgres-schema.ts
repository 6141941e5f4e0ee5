// Whether the migrations are applied, read against what their SQL says they
// install: every file recorded, every table there, every trigger there and on.
import type { Sql } from '../db/postgres.js'
import type { ExpectedSchema } from './expected-schema.js'
import { fail, pass, type Check } from './report.js'
import { errorCode } from '../errors.js'
import { within } from './within.js'

export async function schemaCheck (sql: Sql, expected: ExpectedSchema, waitMs: number): Promise<Check> {
  try {
    const applied = new Set((await within(waitMs, sql<Array<{ name: string }>>`SELECT name FROM session_validator.migrations`)).map(r => r.name))
    const missing = expected.migrations.filter(m => !applied.has(m))
    const present = await within(waitMs, sql<Array<{ name: string }>>`
      SELECT name FROM unnest(${expected.tables}::text[]) AS name
      WHERE to_regclass(format('%I.%I', split_part(name, '.', 1), split_part(name, '.', 2))) IS NOT NULL`)
    const tables = new Set(present.map(r => r.name))
    const absent = expected.tables.filter(t => !tables.has(t))
    const [epoch] = absent.includes('session_validator.cache_epoch') ? [] : await within(waitMs, sql<Array<{ epoch: string }>>`SELECT epoch::text FROM session_validator.cache_epoch`)
    if (missing.length > 0 || absent.length > 0 || epoch === undefined) {
      const what = [
        missing.length > 0 ? `not applied: ${missing.join(', ')}` : '',
        absent.length > 0 ? `missing tables: ${absent.join(', ')}` : '',
        absent.length === 0 && epoch === undefined ? 'session_validator.cache_epoch has no row' : ''
      ].filter(s => s !== '').join('; ')
      return fail('postgres schema', `${what} — run npm run migrate`, { missing, absent })
    }
    return pass('postgres schema', `${expected.migrations.length} of ${expected.migrations.length} migrations applied, ${expected.tables.length} tables present, cache epoch ${epoch.epoch}`)
  } catch (err) {
    if (errorCode(err) === '42P01') return fail('postgres schema', 'not migrated (no session_validator.migrations) — run npm run migrate')
    return fail('postgres schema', `could not be read (${errorCode(err)})`)
  }
}

export async function triggerCheck (sql: Sql, { triggers }: ExpectedSchema, waitMs: number): Promise<Check> {
  try {
    const rows = await within(waitMs, sql<Array<{ name: string, table: string, enabled: string }>>`
      SELECT t.tgname AS name, n.nspname || '.' || c.relname AS table, t.tgenabled AS enabled
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT t.tgisinternal`)
    const found = new Map(rows.map(r => [`${r.name} ON ${r.table}`, r.enabled]))
    const missing = triggers.filter(t => !found.has(`${t.name} ON ${t.table}`)).map(t => `${t.name} on ${t.table}`)
    // 'D': ALTER TABLE ... DISABLE TRIGGER; changes would no longer be notified
    const disabled = triggers.filter(t => found.get(`${t.name} ON ${t.table}`) === 'D').map(t => `${t.name} on ${t.table}`)
    if (missing.length > 0 || disabled.length > 0) {
      const what = [missing.length > 0 ? `missing: ${missing.join(', ')}` : '', disabled.length > 0 ? `disabled: ${disabled.join(', ')}` : ''].filter(s => s !== '')
      return fail('postgres triggers', `${what.join('; ')} — changes made straight in Postgres would not reach the cache`, { missing, disabled })
    }
    return pass('postgres triggers', `${triggers.length} of ${triggers.length} installed and enabled (${triggers.map(t => t.name).join(', ')})`)
  } catch (err) {
    return fail('postgres triggers', `could not be read (${errorCode(err)})`)
  }
}
