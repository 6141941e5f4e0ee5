// The soak's sessions, issued as Studio issues them (a row in
// platform.user_sessions holding the token's SHA-256), and what the soak
// knows of each: live or revoked, and what the service answered for it.
import { randomBytes, randomUUID } from 'node:crypto'
import type postgres from 'postgres'
import { sha256Hex } from '../src/sha256.ts'

export interface Session {
  token: string
  digest: string
  id: string
  userId: string
  /** the end user's address, sent as X-Real-IP */
  address: string
  /** when a 200 miss last answered it: its Redis entry was (re)written about then */
  filledAt: number | undefined
  /** when a 200 last came from Redis (x-session-cache-tier: redis) */
  seenInRedisAt: number | undefined
  revokeSentAt: number | undefined
  revokedAt: number | undefined
}

export interface Population {
  live: Session[]
  /** the most recently revoked, newest last */
  revoked: Session[]
  usersWithSessions(): string[]
  sessionsOf(userId: string): Session[]
  /** A new user with `n` sessions. */
  addUser(n: number): Promise<Session[]>
  /** One more session for an existing user. */
  addSession(userId: string): Promise<Session>
  /** Out of the live set, before the revoke is sent: validations from now on may be answered either way. */
  revoking(sessions: Session[], at: number): void
  revokeDone(sessions: Session[], at: number): void
}

const KEEP_REVOKED = 200
const DAY_MS = 86_400_000

export function population (sql: postgres.Sql): Population {
  const live: Session[] = []
  const revokedList: Session[] = []
  const byUser = new Map<string, Session[]>()
  let users = 0

  async function insert (userId: string, address: string, n: number): Promise<Session[]> {
    const sessions = Array.from({ length: n }, (): Session => {
      const token = randomBytes(24).toString('base64url')
      return { token, digest: sha256Hex(token), id: randomUUID(), userId, address, filledAt: undefined, seenInRedisAt: undefined, revokeSentAt: undefined, revokedAt: undefined }
    })
    const expires = new Date(Date.now() + 30 * DAY_MS)
    await sql`INSERT INTO platform.user_sessions ${sql(sessions.map(s => ({ id: s.id, user_id: s.userId, token: s.digest, expires_at: expires, ip_address: address, user_agent: 'soak' })))}`
    const list = byUser.get(userId) ?? []
    list.push(...sessions)
    byUser.set(userId, list)
    live.push(...sessions)
    return sessions
  }

  return {
    live,
    revoked: revokedList,
    usersWithSessions: () => [...byUser.keys()],
    sessionsOf: userId => byUser.get(userId) ?? [],
    async addUser (n) {
      const id = randomUUID()
      const u = ++users
      await sql`INSERT INTO platform.users (id, email, first_name, last_name, username)
                VALUES (${id}, ${`soak${u}@example.com`}, 'Soak', ${`User ${u}`}, ${`soak${u}`})`
      return await insert(id, `10.${(u >> 8) & 255}.${u & 255}.${1 + (u % 250)}`, n)
    },
    async addSession (userId) {
      const address = byUser.get(userId)?.[0]?.address ?? '10.0.0.1'
      return (await insert(userId, address, 1))[0]!
    },
    revoking (sessions, at) {
      for (const s of sessions) {
        s.revokeSentAt ??= at
        const i = live.indexOf(s)
        if (i !== -1) live.splice(i, 1)
      }
    },
    revokeDone (sessions, at) {
      for (const s of sessions) {
        if (s.revokedAt !== undefined) continue
        s.revokedAt = at
        revokedList.push(s)
        const list = byUser.get(s.userId)
        if (list !== undefined) {
          const i = list.indexOf(s)
          if (i !== -1) list.splice(i, 1)
          if (list.length === 0) byUser.delete(s.userId)
        }
      }
      if (revokedList.length > KEEP_REVOKED) revokedList.splice(0, revokedList.length - KEEP_REVOKED)
    }
  }
}
