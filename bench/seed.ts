import type postgres from 'postgres'

// Raw tokens are `tok-<n>`, so the load generators can name any session
// without a list; the table holds only their SHA-256, as Studio's does.
const CHUNK = 100_000

// Field sizes like real ones: the Redis memory per session depends on them.
const USER_AGENTS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'
]
const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken']
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Hamilton', 'Thompson']

export async function seedSessions (sql: postgres.Sql, sessions: number, perUser: number, log: (line: string) => void): Promise<void> {
  const users = Math.ceil(sessions / perUser)
  for (let from = 1; from <= users; from += CHUNK) {
    const to = Math.min(users, from + CHUNK - 1)
    await sql.begin(async tx => {
      await tx`SET LOCAL synchronous_commit = off`
      await tx`
        INSERT INTO platform.users (id, email, first_name, last_name, username)
        SELECT md5('u' || u)::uuid, 'user' || u || '@example.com',
               (${FIRST}::text[])[1 + u % ${FIRST.length}], (${LAST}::text[])[1 + (u / 8) % ${LAST.length}], 'user' || u
          FROM generate_series(${from}::int, ${to}::int) AS u`
    })
  }
  for (let from = 1; from <= sessions; from += CHUNK) {
    const to = Math.min(sessions, from + CHUNK - 1)
    await sql.begin(async tx => {
      await tx`SET LOCAL synchronous_commit = off`
      // sessions n and n+1 of one user sit next to each other, as a user's do
      await tx`
        INSERT INTO platform.user_sessions (id, user_id, token, expires_at, last_activity_at, created_at, ip_address, user_agent)
        SELECT md5('s' || n)::uuid, md5('u' || ((n - 1) / ${perUser}::int + 1))::uuid,
               encode(sha256(convert_to('tok-' || n, 'UTF8')), 'hex'),
               now() + interval '30 days', now() - interval '1 hour', now() - interval '1 day',
               '10.' || ((n >> 16) & 255) || '.' || ((n >> 8) & 255) || '.' || (n & 255),
               (${USER_AGENTS}::text[])[1 + n % ${USER_AGENTS.length}]
          FROM generate_series(${from}::int, ${to}::int) AS n`
    })
    log(`  seeded ${to.toLocaleString('en')} / ${sessions.toLocaleString('en')} sessions`)
  }
  await sql`VACUUM ANALYZE platform.users`
  await sql`VACUUM ANALYZE platform.user_sessions`
}
