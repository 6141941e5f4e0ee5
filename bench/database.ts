import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import type * as MigrateModule from '../src/migrate.ts'
import { onCleanup } from './cleanup.ts'
import { distHref } from './dist.ts'

export interface BenchDatabase {
  name: string
  url: string
  sql: postgres.Sql
  /** the server processes serving the bench database's connections (local Postgres only) */
  backendPids(): Promise<number[]>
}

// A database of the bench's own, on the admin URL's server, migrated with the
// service's own migrations and dropped at the end (also on error).
export async function createBenchDatabase (adminUrl: string): Promise<BenchDatabase> {
  const name = `sv_bench_${randomBytes(6).toString('hex')}`
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 })
  onCleanup('admin connection', () => admin.end({ timeout: 2 }))
  await admin.unsafe(`CREATE DATABASE ${name}`)
  onCleanup(`database ${name}`, async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  })
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const sql = postgres(url.toString(), { max: 2, onnotice: () => {}, connect_timeout: 5 })
  onCleanup('bench connection', () => sql.end({ timeout: 2 }))
  const { migrate } = await import(distHref('migrate.js')) as typeof MigrateModule
  await migrate(sql)
  const backendPids = async () => (await sql<Array<{ pid: number }>>`
    SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).map(r => r.pid)
  return { name, url: url.toString(), sql, backendPids }
}
