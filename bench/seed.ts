import type postgres from 'postgres'
import { SLIDING_SECONDS } from './lifecycle.ts'
import type { Range } from './tokens.ts'

// Raw tokens are `tok-<n>`, so the load generators can name any session
// without a list; the table holds only their SHA-256, as Studio's does.
const CHUNK = 100_000

// Field sizes like real ones: the Redis memory per session depends on them.
export const USER_AGENTS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'
]
export const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken']
export const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Hamilton', 'Thompson']

// standard: a 30-day session used an hour ago. sliding: what a session looks
// like under sliding expiry, used just now and expiring one window later.
export type SessionShape = 'standard' | 'sliding'

const TIMES: Record<SessionShape, string> = {
  standard: "now() + interval '30 days', now() - interval '1 hour'",
  sliding: `now() + interval '${SLIDING_SECONDS} seconds', now()`
}

export async function seedSessions (sql: postgres.Sql, range: Range, perUser: number, shape: SessionShape, log: (line: string) => void): Promise<void> {
  const userOf = (n: number) => Math.floor((n - 1) / perUser) + 1
  for (let from = userOf(range.lo); from <= userOf(range.hi); from += CHUNK) {
    const to = Math.min(userOf(range.hi), from + CHUNK - 1)
    await sql.begin(async tx => {
      await tx`SET LOCAL synchronous_commit = off`
      // a range may start inside the previous one's last user
      await tx`
        INSERT INTO platform.users (id, email, first_name, last_name, username)
        SELECT md5('u' || u)::uuid, 'user' || u || '@example.com',
               (${FIRST}::text[])[1 + u % ${FIRST.length}], (${LAST}::text[])[1 + (u / 8) % ${LAST.length}], 'user' || u
          FROM generate_series(${from}::int, ${to}::int) AS u
        ON CONFLICT (id) DO NOTHING`
    })
  }
  for (let from = range.lo; from <= range.hi; from += CHUNK) {
    const to = Math.min(range.hi, from + CHUNK - 1)
    await sql.begin(async tx => {
      await tx`SET LOCAL synchronous_commit = off`
      // sessions n and n+1 of one user sit next to each other, as a user's do
      await tx.unsafe(`
        INSERT INTO platform.user_sessions (id, user_id, token, expires_at, last_activity_at, created_at, ip_address, user_agent)
        SELECT md5('s' || n)::uuid, md5('u' || ((n - 1) / $1::int + 1))::uuid,
               encode(sha256(convert_to('tok-' || n, 'UTF8')), 'hex'),
               ${TIMES[shape]}, now() - interval '1 day',
               '10.' || ((n >> 16) & 255) || '.' || ((n >> 8) & 255) || '.' || (n & 255),
               ($2::text[])[1 + n % ${USER_AGENTS.length}]
          FROM generate_series($3::int, $4::int) AS n`, [perUser, USER_AGENTS, from, to])
    })
    log(`  seeded ${(to - range.lo + 1).toLocaleString('en')} / ${(range.hi - range.lo + 1).toLocaleString('en')} ${shape} sessions`)
  }
  await sql`VACUUM ANALYZE platform.users`
  await sql`VACUUM ANALYZE platform.user_sessions`
}
