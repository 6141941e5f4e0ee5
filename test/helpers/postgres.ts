import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { dockerAvailable } from './docker.js'
import { migrate } from '../../src/migrate.js'

type Sql = postgres.Sql
interface Teardown { teardown(fn: () => unknown): void }

let server: Promise<string> | undefined

// Where tests find Postgres: TEST_DATABASE_URL, else a testcontainers
// Postgres when a Docker engine answers, else the local server.
export function adminUrl (): Promise<string> {
  server ??= (async () => {
    if (process.env.TEST_DATABASE_URL !== undefined && process.env.TEST_DATABASE_URL !== '') return process.env.TEST_DATABASE_URL
    if (await dockerAvailable()) {
      const { GenericContainer, Wait } = await import('testcontainers')
      const container = await new GenericContainer('postgres:17-alpine')
        .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
        .withExposedPorts(5432)
        .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
        .start()
      return `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`
    }
    return 'postgres://postgres@127.0.0.1:5432/postgres'
  })()
  return server
}

export function quietSql (url: string, max = 2): Sql {
  return postgres(url, { max, onnotice: () => {}, connect_timeout: 5 })
}

export interface TestDatabase {
  url: string
  sql: Sql
  name: string
}

// A database of its own for each test file, migrated, dropped at the end.
export async function freshDatabase (t: Teardown): Promise<TestDatabase> {
  const admin = await adminUrl()
  const name = `sv_test_${randomBytes(6).toString('hex')}`
  const adminSql = quietSql(admin, 1)
  await adminSql.unsafe(`CREATE DATABASE ${name}`)
  const url = new URL(admin)
  url.pathname = `/${name}`
  const sql = quietSql(url.toString(), 4)
  await migrate(sql)
  t.teardown(async () => {
    await sql.end({ timeout: 1 })
    await adminSql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await adminSql.end({ timeout: 1 })
  })
  return { url: url.toString(), sql, name }
}
