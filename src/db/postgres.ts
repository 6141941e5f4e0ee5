// The one postgres.js client of the process.
import postgres from 'postgres'
import type { Config } from '../config.js'

export type Sql = postgres.Sql

// One `sql` per process. Short connect timeout so a dead Postgres is a fast 503;
// notices are dropped (they would otherwise go to console).
export function createSql (config: Pick<Config, 'databasePoolMax' | 'databaseConnectTimeoutSeconds'>, url: string, applicationName = 'session-validator'): Sql {
  return postgres(url, {
    max: config.databasePoolMax,
    connect_timeout: config.databaseConnectTimeoutSeconds,
    idle_timeout: 60,
    onnotice: () => {},
    connection: { application_name: applicationName }
  })
}
