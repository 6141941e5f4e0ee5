// Postgres as the service will meet it: reachable with DATABASE_URL, recent
// enough, migrated (tables and triggers as the migrations say), and LISTEN/NOTIFY
// working (a transaction-mode pooler in between, say, breaks it).
import { randomBytes } from 'node:crypto'
import type { Config } from '../config.js'
import { createSql, type Sql } from '../db/postgres.js'
import { readMigrations } from '../migrate.js'
import { expectedSchema } from './expected-schema.js'
import { schemaCheck, triggerCheck } from './postgres-schema.js'
import { fail, pass, type Check } from './report.js'
import { errorCode } from '../errors.js'
import { within } from './within.js'

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
const reason = (err: unknown) => `${REASONS[errorCode(err)] ?? 'cannot connect'} (${errorCode(err)})`

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
      await schemaCheck(sql, expected, waitMs),
      await triggerCheck(sql, expected, waitMs),
      await notifyCheck(sql, waitMs)
    ]
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {})
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
    return fail('postgres listen/notify', `no round trip (${errorCode(err)}): changes made straight in Postgres would not reach the cache`)
  }
}
