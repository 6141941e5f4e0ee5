import { readdir, readFile } from 'node:fs/promises'
import type { Sql } from './db/postgres.js'

const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url)

// Applies each file of migrations/ once, in name order, each in its own
// transaction, under an advisory lock so that instances starting together
// do not race. Running it again changes nothing.
export async function migrate (sql: Sql): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter(f => f.endsWith('.sql')).sort()
  const applied: string[] = []
  await sql.begin(async tx => {
    await tx`SELECT pg_advisory_xact_lock(4242001)`
    await tx`CREATE SCHEMA IF NOT EXISTS session_validator`
    await tx`CREATE TABLE IF NOT EXISTS session_validator.migrations (
      name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`
    const done = new Set((await tx<Array<{ name: string }>>`SELECT name FROM session_validator.migrations`).map(r => r.name))
    for (const file of files) {
      if (done.has(file)) continue
      const text = await readFile(new URL(file, MIGRATIONS_DIR), 'utf8')
      await tx.unsafe(text)
      await tx`INSERT INTO session_validator.migrations (name) VALUES (${file})`
      applied.push(file)
    }
  })
  return applied
}
