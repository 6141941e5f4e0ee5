// Extra columns an operator names (SESSION_EXTRA_FIELDS, USER_EXTRA_FIELDS):
// read with the session, cached with it, answered in camelCase, typed in the
// OpenAPI document, and covered by triggers so that a change is seen within
// the usual second.
import type { Sql } from '../db/postgres.js'
import type { ExtraField, ExtraFields, ExtraType } from '../config.js'
import { ExtraFieldsError } from '../errors.js'

// Postgres types each declared type accepts, by udt_name.
const ACCEPTS: Record<ExtraType, string[]> = {
  text: ['text', 'varchar', 'bpchar', 'citext', 'name'],
  uuid: ['uuid'],
  integer: ['int2', 'int4'],
  bigint: ['int8'],
  number: ['float4', 'float8', 'numeric'],
  boolean: ['bool'],
  timestamp: ['timestamptz', 'timestamp', 'date'],
  json: ['json', 'jsonb']
}

// JSON Schema of each type's answer; null when the column is.
const SCHEMA: Record<ExtraType, Record<string, unknown>> = {
  text: { type: ['string', 'null'] },
  uuid: { type: ['string', 'null'], format: 'uuid' },
  integer: { type: ['integer', 'null'] },
  bigint: { type: ['string', 'null'], description: 'a 64-bit integer, as a string' },
  number: { type: ['number', 'null'] },
  boolean: { type: ['boolean', 'null'] },
  timestamp: { type: ['string', 'null'], format: 'date-time' },
  json: { description: 'any JSON value' }
}

export function extraProperties (fields: readonly ExtraField[]): Record<string, Record<string, unknown>> {
  return Object.fromEntries(fields.map(f => [f.name, { ...SCHEMA[f.type], description: `${f.table === 'session' ? 'user_sessions' : 'users'}.${f.column}` }]))
}

/** The select list's extra part: `, s."a", u."b"` (identifiers checked by the configuration). */
export function extraColumns (fields: ExtraFields): string {
  return [...fields.session.map(f => `, s."${f.column}"`), ...fields.user.map(f => `, u."${f.column}"`)].join('')
}

// What postgres.js hands back, as the answer carries it (and the cache keeps).
function normalize (value: unknown, type: ExtraType): unknown {
  if (value === null || value === undefined) return null
  if (type === 'timestamp') return value instanceof Date ? value.toISOString() : String(value)
  if (type === 'number') return Number(value)
  if (type === 'bigint') return String(value)
  return value
}

export function normalizeExtras (values: readonly unknown[], fields: ExtraFields): unknown[] {
  const all = [...fields.session, ...fields.user]
  return all.map((f, i) => normalize(values[i], f.type))
}

const variableOf = (f: ExtraField) => f.table === 'session' ? 'SESSION_EXTRA_FIELDS' : 'USER_EXTRA_FIELDS'

/**
 * Checks that every named column exists with a type its declaration accepts,
 * then installs the triggers that notify their changes (idempotent). Throws
 * an ExtraFieldsError naming the variable when a column is missing or of
 * another type, or when the triggers cannot be installed.
 */
export async function ensureExtraFields (sql: Sql, fields: ExtraFields): Promise<void> {
  const all = [...fields.session, ...fields.user]
  if (all.length === 0) return
  const rows = await sql<Array<{ table_name: string, column_name: string, udt_name: string }>>`
    SELECT table_name, column_name, udt_name FROM information_schema.columns
     WHERE table_schema = 'platform' AND table_name IN ('user_sessions', 'users')`
  for (const f of all) {
    const table = f.table === 'session' ? 'user_sessions' : 'users'
    const row = rows.find(r => r.table_name === table && r.column_name === f.column)
    if (row === undefined) throw new ExtraFieldsError(variableOf(f), `platform.${table} has no column ${f.column}`)
    if (!ACCEPTS[f.type].includes(row.udt_name)) throw new ExtraFieldsError(variableOf(f), `platform.${table}.${f.column} is ${row.udt_name}, not ${f.type}`)
  }
  const trigger = (name: string, table: string, fn: string, list: ExtraField[]) => `
    CREATE OR REPLACE TRIGGER ${name}
      AFTER UPDATE OF ${list.map(f => `"${f.column}"`).join(', ')} ON platform.${table}
      FOR EACH ROW WHEN (${list.map(f => `OLD."${f.column}" IS DISTINCT FROM NEW."${f.column}"`).join(' OR ')})
      EXECUTE FUNCTION session_validator.${fn}()`
  try {
    if (fields.session.length > 0) await sql.unsafe(trigger('session_validator_session_extra', 'user_sessions', 'notify_session_changed', fields.session))
    if (fields.user.length > 0) await sql.unsafe(trigger('session_validator_user_extra', 'users', 'notify_user_changed', fields.user))
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'unknown'
    throw new ExtraFieldsError(variableOf(all[0]!), `cannot install the triggers that notify changes of these columns (${code}); run npm run migrate as the tables' owner`)
  }
}
