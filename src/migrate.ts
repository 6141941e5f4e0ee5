// Schema migrations: read migrations/*.sql and apply each once.
import { readdir, readFile } from 'node:fs/promises'
import type { Sql } from './db/postgres.js'

const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url)

export interface Migration { name: string, sql: string }

/** migrations/*.sql in the order they apply (the doctor reads them too). */
export async function readMigrations (): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter(f => f.endsWith('.sql')).sort()
  return await Promise.all(files.map(async name => ({ name, sql: await readFile(new URL(name, MIGRATIONS_DIR), 'utf8') })))
}

// Applies each file of migrations/ once, in name order, each in its own
// transaction, under an advisory lock so that instances starting together
// do not race. Running it again changes nothing.
export async function migrate (sql: Sql): Promise<string[]> {
  const migrations = await readMigrations()
  const applied: string[] = []
  await sql.begin(async tx => {
    await tx`SELECT pg_advisory_xact_lock(4242001)`
    await tx`CREATE SCHEMA IF NOT EXISTS session_validator`
    await tx`CREATE TABLE IF NOT EXISTS session_validator.migrations (
      name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`
    const done = new Set((await tx<Array<{ name: string }>>`SELECT name FROM session_validator.migrations`).map(r => r.name))
    for (const { name, sql: text } of migrations) {
      if (done.has(name)) continue
      await tx.unsafe(text)
      await tx`INSERT INTO session_validator.migrations (name) VALUES (${name})`
      applied.push(name)
    }
  })
  return applied
}
