import { randomBytes, randomUUID } from 'node:crypto'
import type postgres from 'postgres'
import { hashToken } from '../../src/token.js'

export interface TestSession { token: string, digest: string, id: string, userId: string }

export async function createUser (sql: postgres.Sql, fields: { email?: string, firstName?: string | null, lastName?: string | null, username?: string | null } = {}): Promise<string> {
  const id = randomUUID()
  await sql`INSERT INTO platform.users (id, email, first_name, last_name, username)
            VALUES (${id}, ${fields.email ?? `${id.slice(0, 8)}@example.com`}, ${fields.firstName ?? 'Test'},
                    ${fields.lastName === undefined ? 'User' : fields.lastName}, ${fields.username === undefined ? null : fields.username})`
  return id
}

// Issues a session as Studio would: only the SHA-256 of the token is stored.
export async function createSession (sql: postgres.Sql, userId: string, opts: { expiresInMs?: number, ipAddress?: string | null, userAgent?: string | null } = {}): Promise<TestSession> {
  const token = randomBytes(24).toString('base64url')
  const digest = hashToken(token)
  const id = randomUUID()
  const expires = new Date(Date.now() + (opts.expiresInMs ?? 3_600_000))
  await sql`INSERT INTO platform.user_sessions (id, user_id, token, expires_at, ip_address, user_agent)
            VALUES (${id}, ${userId}, ${digest}, ${expires}, ${opts.ipAddress === undefined ? '10.0.0.1' : opts.ipAddress},
                    ${opts.userAgent === undefined ? 'tap' : opts.userAgent})`
  return { token, digest, id, userId }
}
