// What the migrations install, read from their SQL rather than listed by hand,
// so a migration added later is checked without touching the doctor.
import type { Migration } from '../migrate.js'

export interface ExpectedSchema {
  migrations: string[]
  /** schema.table */
  tables: string[]
  triggers: Array<{ name: string, table: string }>
}

const STATEMENT = new RegExp([
  String.raw`\b(CREATE)\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s+([\w"]+)\s[\s\S]*?\bON\s+([\w."]+)`,
  String.raw`\b(DROP)\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?([\w"]+)\s+ON\s+([\w."]+)`,
  String.raw`\b(CREATE)\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?()([\w."]+)`,
  String.raw`\b(DROP)\s+TABLE\s+(?:IF\s+EXISTS\s+)?()([\w."]+)`
].join('|'), 'gi')

// As Postgres folds them: unquoted to lower case, quoted as written.
const ident = (part: string) => part.startsWith('"') ? part.slice(1, -1) : part.toLowerCase()
const qualified = (name: string) => {
  const parts = name.split('.').map(ident)
  return parts.length === 1 ? `public.${parts[0]}` : parts.join('.')
}

// Comments and dollar-quoted bodies (functions) hold no DDL that runs here.
function statementsOnly (sql: string): string {
  return sql.replace(/\$(\w*)\$[\s\S]*?\$\1\$/g, '').replace(/--.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '')
}

export function expectedSchema (migrations: readonly Migration[]): ExpectedSchema {
  const tables = new Set<string>()
  const triggers = new Map<string, { name: string, table: string }>()
  for (const { sql } of migrations) {
    for (const m of statementsOnly(sql).matchAll(STATEMENT)) {
      const groups = m.slice(1).filter(g => g !== undefined)
      const [verb, trigger, table] = [groups[0]!.toUpperCase(), groups[1]!, qualified(groups[2]!)]
      if (trigger === '') {
        if (verb === 'CREATE') {
          tables.add(table)
        } else {
          // its triggers go with it
          tables.delete(table)
          for (const [key, t] of triggers) if (t.table === table) triggers.delete(key)
        }
        continue
      }
      const name = ident(trigger)
      if (verb === 'CREATE') triggers.set(`${name} ON ${table}`, { name, table })
      else triggers.delete(`${name} ON ${table}`)
    }
  }
  return { migrations: migrations.map(m => m.name), tables: [...tables], triggers: [...triggers.values()] }
}
