// Postgres as the service will meet it: reachable with DATABASE_URL, recent
// enough, migrated (tables and triggers as the migrations say), and LISTEN/NOTIFY
// working (a transaction-mode pooler in between, say, breaks it).
import { randomBytes } from 'node:crypto'
import type { Config } from '../config.js'
import { createSql, type Sql } from '../db/postgres.js'
import { readMigrations } from '../migrate.js'
import { expectedSchema, type ExpectedSchema } from './expected-schema.js'
import { fail, pass, type Check } from './report.js'
import { codeOf, within } from './within.js'

const MIN_VERSION = 13 // gen_random_uuid() without an extension
const CHANNEL = 'session_validator_doctor'

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'nothing listens there',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
  ECONNRESET: 'the connection was cut before Postgres answered',
  CONNECTION_CLOSED: 'the connection was cut before Postgres answered',
  CONNECT_TIMEOUT: 'no answer within DATABASE_CONNECT_TIMEOUT_SECONDS',
  TIMEOUT: 'no answer in time',
  '28P01': 'the password was refused',
  28000: 'this role may not connect',
  '3D000': 'the database does not exist'
}
const reason = (err: unknown) => `${REASONS[codeOf(err)] ?? 'cannot connect'} (${codeOf(err)})`

export async function postgresChecks (config: Config): Promise<Check[]> {
  if (config.databaseUrl === undefined) {
    return [fail('postgres', 'DATABASE_URL is not set: the service would run on an embedded, in-memory demo database')]
  }
  const sql = createSql({ ...config, databasePoolMax: 1 }, config.databaseUrl)
  const waitMs = config.databaseConnectTimeoutSeconds * 1000 + 2000
  try {
    let row: { num: string, text: string } | undefined
    try {
      [row] = await within(waitMs, sql<Array<{ num: string, text: string }>>`
        SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS text`)
    } catch (err) {
      return [fail('postgres reachable', reason(err))]
    }
    const version = Number(row!.num)
    const major = Math.floor(version / 10_000)
    const expected = expectedSchema(await readMigrations())
    return [
      pass('postgres reachable', `connected, PostgreSQL ${row!.text.split(' ')[0]}`),
      version >= MIN_VERSION * 10_000
        ? pass('postgres version', `${major} (${MIN_VERSION} or later is needed)`, { serverVersionNum: version })
        : fail('postgres version', `${major} is too old: ${MIN_VERSION} or later is needed`, { serverVersionNum: version }),
      await schemaCheck(sql, expected),
      await triggerCheck(sql, expected),
      await notifyCheck(sql, waitMs)
    ]
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {})
  }
}

async function schemaCheck (sql: Sql, expected: ExpectedSchema): Promise<Check> {
  try {
    const applied = new Set((await sql<Array<{ name: string }>>`SELECT name FROM session_validator.migrations`).map(r => r.name))
    const missing = expected.migrations.filter(m => !applied.has(m))
    const present = await sql<Array<{ name: string }>>`
      SELECT name FROM unnest(${expected.tables}::text[]) AS name
      WHERE to_regclass(format('%I.%I', split_part(name, '.', 1), split_part(name, '.', 2))) IS NOT NULL`
    const tables = new Set(present.map(r => r.name))
    const absent = expected.tables.filter(t => !tables.has(t))
    const [epoch] = absent.includes('session_validator.cache_epoch') ? [] : await sql<Array<{ epoch: string }>>`SELECT epoch::text FROM session_validator.cache_epoch`
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
    if (codeOf(err) === '42P01') return fail('postgres schema', 'not migrated (no session_validator.migrations) — run npm run migrate')
    return fail('postgres schema', `could not be read (${codeOf(err)})`)
  }
}

async function triggerCheck (sql: Sql, { triggers }: ExpectedSchema): Promise<Check> {
  try {
    const rows = await sql<Array<{ name: string, table: string, enabled: string }>>`
      SELECT t.tgname AS name, n.nspname || '.' || c.relname AS table, t.tgenabled AS enabled
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT t.tgisinternal`
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
    return fail('postgres triggers', `could not be read (${codeOf(err)})`)
  }
}

// A channel of the doctor's own: running instances never see it.
async function notifyCheck (sql: Sql, waitMs: number): Promise<Check> {
  const payload = randomBytes(8).toString('hex')
  let heard: () => void = () => {}
  const arrived = new Promise<void>(resolve => { heard = resolve })
  try {
    const listening = await within(waitMs, sql.listen(CHANNEL, value => { if (value === payload) heard() }))
    try {
      const start = performance.now()
      await within(waitMs, sql.notify(CHANNEL, payload))
      await within(2000, arrived)
      const ms = Math.round((performance.now() - start) * 100) / 100
      return pass('postgres listen/notify', `a notification came back in ${ms} ms`, { roundTripMs: ms })
    } finally {
      await listening.unlisten().catch(() => {})
    }
  } catch (err) {
    return fail('postgres listen/notify', `no round trip (${codeOf(err)}): changes made straight in Postgres would not reach the cache`)
  }
}
