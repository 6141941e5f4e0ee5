// What a first draft would do: a plain Fastify route, postgres.js with its
// defaults (pool of 10, keyed rows, timestamps parsed to Date), no cache, no
// breaker, no response schema. The lookup is the service's (same tables, join,
// predicate and index), selecting plain columns: the service's epoch-millisecond
// expressions are one of its own optimizations, and keyed rows cannot hold
// its unnamed columns.
import { createHash } from 'node:crypto'
import Fastify from 'fastify'
import postgres from 'postgres'

const sql = postgres(process.env.DATABASE_URL ?? '')
const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } })

app.post<{ Body: { token?: string } }>('/sessions/validate', async (request, reply) => {
  const token = request.body?.token
  if (typeof token !== 'string' || token === '') return reply.code(400).send({ error: 'token required' })
  const digest = createHash('sha256').update(token).digest('hex')
  const [row] = await sql`
    SELECT s.id, s.user_id, s.expires_at, s.created_at, s.last_activity_at, s.ip_address, s.user_agent,
           u.email, u.first_name, u.last_name, u.username
      FROM platform.user_sessions s
      JOIN platform.users u ON u.id = s.user_id
     WHERE s.token = ${digest}`
  if (row === undefined) return reply.code(401).send({ valid: false, reason: 'not_found' })
  if (row.expires_at <= new Date()) return reply.code(401).send({ valid: false, reason: 'expired' })
  return {
    valid: true,
    session: {
      id: row.id,
      userId: row.user_id,
      expiresAt: row.expires_at,
      createdAt: row.created_at,
      lastActivityAt: row.last_activity_at,
      ipAddress: row.ip_address,
      userAgent: row.user_agent
    },
    user: { id: row.user_id, email: row.email, firstName: row.first_name, lastName: row.last_name, username: row.username }
  }
})

process.once('SIGTERM', () => { app.close().then(() => sql.end({ timeout: 2 })).finally(() => process.exit(0)) })
await app.listen({ port: Number(process.env.PORT), host: process.env.HOST ?? '127.0.0.1' })
