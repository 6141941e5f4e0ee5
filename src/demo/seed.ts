// Demo data: a few users and sessions.
import { randomBytes } from 'node:crypto'
import type { Sql } from '../db/postgres.js'
import { hashToken } from '../token.js'

// A few users and sessions to try the service with; returns one raw token.
// The raw tokens exist only here, in memory, for the demo.
export async function seedDemo (sql: Sql): Promise<string> {
  const people = [
    ['ada@example.com', 'Ada', 'Lovelace', 'ada'],
    ['grace@example.com', 'Grace', 'Hopper', 'grace'],
    ['alan@example.com', 'Alan', 'Turing', null]
  ] as const
  let demoToken = ''
  for (const [email, first, last, username] of people) {
    const [user] = await sql<Array<{ id: string }>>`
      INSERT INTO platform.users (email, first_name, last_name, username)
      VALUES (${email}, ${first}, ${last}, ${username}) RETURNING id`
    const token = randomBytes(32).toString('base64url')
    await sql`
      INSERT INTO platform.user_sessions (user_id, token, expires_at, ip_address, user_agent)
      VALUES (${user!.id}, ${hashToken(token)}, now() + interval '7 days', '127.0.0.1', 'demo-seed')`
    if (demoToken === '') demoToken = token
  }
  return demoToken
}
