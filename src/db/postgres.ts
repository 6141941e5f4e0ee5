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
    backoff: reconnectDelaySeconds,
    onnotice: () => {},
    connection: { application_name: applicationName }
  })
}

// The driver's own back-off grows with every failed connect of the process
// (3^n / 100 s, up to 20 s): after an outage of a few seconds a connection
// may wait 10-20 s before it tries again, every miss meanwhile a 503 though
// Postgres is back. Ours stops at one second (with jitter): a connect attempt
// is cheap, and the pool holds at most DATABASE_POOL_MAX connections.
function reconnectDelaySeconds (retries: number): number {
  return Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2)
}
