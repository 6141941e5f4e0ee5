// The real session-validator (the built dist/server.js) for the client's
// tests: its own database, optionally Redis under a fresh prefix, and
// Postgres reached through a fault proxy when a test needs to cut it.
import { freshDatabase, type TestDatabase } from '../../../test/helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../../../test/helpers/redis.js'
import { faultProxy, type FaultProxy } from '../../../test/helpers/fault-proxy.js'
import { freePort } from '../../../test/helpers/ports.js'
import { startServer, waitForHttp, type ServerProcess } from '../../../test/helpers/process.js'

interface Teardown { teardown(fn: () => unknown): void }

export interface Service {
  url: string
  db: TestDatabase
  server: ServerProcess
  /** Between the service and Postgres, when asked for. */
  postgres: FaultProxy | undefined
}

export interface ServiceOptions {
  db?: TestDatabase
  redis?: boolean
  /** Put a fault proxy between the service and Postgres. */
  cuttablePostgres?: boolean
  env?: Record<string, string>
}

export async function startService (t: Teardown, opts: ServiceOptions = {}): Promise<Service> {
  const db = opts.db ?? await freshDatabase(t)
  let databaseUrl = db.url
  let postgres: FaultProxy | undefined
  if (opts.cuttablePostgres === true) {
    const direct = new URL(db.url)
    postgres = await faultProxy(t, Number(direct.port || 5432), direct.hostname)
    direct.host = `127.0.0.1:${postgres.port}`
    databaseUrl = direct.toString()
  }
  const env: Record<string, string> = { DATABASE_URL: databaseUrl, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...opts.env }
  if (opts.redis === true) {
    const redisUrl = await sharedRedisUrl()
    const prefix = freshPrefix()
    inspector(t, redisUrl, prefix)
    Object.assign(env, { REDIS_URL: redisUrl, SESSION_CACHE_PREFIX: prefix })
  }
  const port = await freePort()
  env.PORT = String(port)
  const server = startServer(t, env)
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/readyz`)
  return { url, db, server, postgres }
}

/** A loopback port nothing listens on. */
export async function closedPortUrl (): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`
}
