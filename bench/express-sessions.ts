// The express-session reference's sessions: session n holds what the service
// answers for token n (same user, same field sizes), under an id and a signed
// cookie the way express-session makes them. Shared by the bench, which
// writes the cookies for wrk, and by servers/express-session.ts, which seeds.
import { createHash, createHmac } from 'node:crypto'
import { FIRST, LAST, USER_AGENTS } from './seed.ts'

export const COOKIE = 'connect.sid'
export const MAX_AGE_MS = 30 * 24 * 3600 * 1000

// 32 base64url characters, like express-session's uid-safe(24) ids
export function sessionId (n: number): string {
  return createHash('sha256').update(`express-session ${n}`).digest('base64url').slice(0, 32)
}

// cookie-signature's sign(), prefixed with "s:", URI-encoded as cookie.serialize does
export function cookieHeader (n: number, secret: string): string {
  const sid = sessionId(n)
  const mac = createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '')
  return `${COOKIE}=${encodeURIComponent(`s:${sid}.${mac}`)}`
}

const uuid = (text: string) => createHash('md5').update(text).digest('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5')

export interface BenchSession {
  cookie: { originalMaxAge: number, expires: string, secure: boolean, httpOnly: boolean, path: string, sameSite: string }
  sessionId: string
  userId: string
  user: { id: string, email: string, firstName: string, lastName: string, username: string }
  createdAt: string
  lastActivityAt: string
  ipAddress: string
  userAgent: string
}

// The object an app would keep in req.session after sign-in: the fields the
// service answers with (bench/seed.ts's values), and express-session's cookie.
export function sessionData (n: number, perUser: number, now = Date.now()): BenchSession {
  const u = Math.floor((n - 1) / perUser) + 1
  const userId = uuid(`u${u}`)
  return {
    cookie: { originalMaxAge: MAX_AGE_MS, expires: new Date(now + MAX_AGE_MS).toISOString(), secure: false, httpOnly: true, path: '/', sameSite: 'lax' },
    sessionId: uuid(`s${n}`),
    userId,
    user: { id: userId, email: `user${u}@example.com`, firstName: FIRST[u % FIRST.length]!, lastName: LAST[Math.floor(u / 8) % LAST.length]!, username: `user${u}` },
    createdAt: new Date(now - 86_400_000).toISOString(),
    lastActivityAt: new Date(now - 3_600_000).toISOString(),
    ipAddress: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
    userAgent: USER_AGENTS[n % USER_AGENTS.length]!
  }
}
