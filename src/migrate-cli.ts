// `npm run migrate`: applies migrations/ (and the extra fields' triggers) to DATABASE_URL.
import { loadConfig } from './config.js'
import { createSql } from './db/postgres.js'
import { migrate } from './migrate.js'
import { ensureExtraFields } from './sessions/extra-fields.js'
import { ExtraFieldsError } from './errors.js'

const config = loadConfig(process.env)
if (config.databaseUrl === undefined) {
  console.error('DATABASE_URL: is required to migrate')
  process.exit(1)
}
const sql = createSql(config, config.databaseUrl)
try {
  const applied = await migrate(sql)
  console.log(applied.length === 0 ? 'migrations: nothing to apply' : `migrations: applied ${applied.join(', ')}`)
  // the triggers of SESSION_EXTRA_FIELDS / USER_EXTRA_FIELDS, as configured
  await ensureExtraFields(sql, config.extraFields)
} catch (err) {
  // the driver's message can name the host; print only its code
  console.error(err instanceof ExtraFieldsError ? err.message : `migrations failed: ${(err as { code?: string }).code ?? 'error'}`)
  process.exitCode = 1
} finally {
  await sql.end({ timeout: 5 })
}
