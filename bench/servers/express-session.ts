// The reference of issue 10: an Express app looking a session up the way
// express-session with connect-redis does, in their documented setup — the
// signed cookie connect.sid, the session read from Redis and parsed on every
// request, then touched (EXPIRE) since resave is off — answering the same
// JSON as the service. Its sessions are seeded through the store itself.
import express from 'express'
import session from 'express-session'
import { RedisStore } from 'connect-redis'
import { createClient } from 'redis'
import { MAX_AGE_MS, sessionData, sessionId, type BenchSession } from '../express-sessions.ts'

declare module 'express-session' {
  interface SessionData extends Omit<BenchSession, 'cookie'> {}
}

const secret = process.env.EXPRESS_SESSION_SECRET ?? ''
if (secret.length < 32) throw new Error('EXPRESS_SESSION_SECRET must hold at least 32 characters')
const count = Number(process.env.EXPRESS_SESSIONS ?? '0')
const perUser = Number(process.env.EXPRESS_SESSIONS_PER_USER ?? '2')

const client = createClient({ url: process.env.REDIS_URL ?? '' })
client.on('error', err => { console.error(`redis: ${(err as Error).message}`) })
await client.connect()
const store = new RedisStore({ client })

const BATCH = 1000
const now = Date.now()
for (let lo = 1; lo <= count; lo += BATCH) {
  const writes = []
  for (let n = lo; n < lo + BATCH && n <= count; n++) {
    writes.push(store.set(sessionId(n), sessionData(n, perUser, now) as unknown as session.SessionData))
  }
  await Promise.all(writes)
}

const app = express()
app.use(session({
  store,
  secret,
  resave: false, // connect-redis: "required: force lightweight session keep alive (touch)"
  saveUninitialized: false,
  cookie: { maxAge: MAX_AGE_MS, httpOnly: true, sameSite: 'lax' }
}))
app.get('/readyz', (_req, res) => { res.send('ok') })
app.get('/sessions/validate', (req, res) => {
  const s = req.session
  if (s.userId === undefined) {
    res.status(401).json({ valid: false, reason: 'not_found' })
    return
  }
  res.json({
    valid: true,
    session: {
      id: s.sessionId,
      userId: s.userId,
      expiresAt: s.cookie.expires?.toISOString() ?? null,
      createdAt: s.createdAt,
      lastActivityAt: s.lastActivityAt,
      ipAddress: s.ipAddress,
      userAgent: s.userAgent
    },
    user: s.user
  })
})

const server = app.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1')
process.once('SIGTERM', () => {
  server.close(() => { client.close().finally(() => process.exit(0)) })
  server.closeAllConnections()
})
