import type { Server } from 'node:http'
import express, { type ErrorRequestHandler } from 'express'
import t from 'tap'
import { createSessionClient, type OutcomeInfo, type SessionClient } from '../src/index.js'
import { authOf, requireSession } from '../src/express.js'
import { createSession, createUser } from '../../test/helpers/fixtures.js'
import { waitFor } from '../../test/helpers/ports.js'
import { closedPortUrl, startService } from './helpers/service.js'
import { silentUpstream } from './helpers/silent-upstream.js'

// The Express middleware in a small Express 5 app, over real connections,
// against the real service.
const service = await startService(t)
const userId = await createUser(service.db.sql, { email: 'ada@example.com' })
const live = await createSession(service.db.sql, userId)

interface Teardown { teardown(fn: () => unknown): void }

async function callerApp (t: Teardown, client: SessionClient): Promise<string> {
  const app = express()
  app.get('/me', requireSession(client, { cookie: 'sid' }), (req, res) => { res.json({ email: authOf(req).user.email, sessionId: req.auth?.session.id }) })
  app.post('/me', express.json(), requireSession(client), (req, res) => { res.json({ id: authOf(req).user.id, body: req.body as unknown }) })
  app.get('/open', (req, res) => { res.json({ auth: req.auth ?? null }) })
  const onError: ErrorRequestHandler = (err: Error, _req, res, _next) => { res.status(500).json({ error: err.message }) }
  app.use(onError)
  const server = await new Promise<Server>(resolve => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

function clientOf (t: Teardown, url: string, outcomes: OutcomeInfo[] = []): SessionClient {
  const client = createSessionClient({ url, timeoutMs: 5000, retries: 0, onOutcome: info => outcomes.push(info) })
  t.teardown(() => client.close())
  return client
}

t.test('Express › 200 for a live session, by Bearer or by cookie, with req.auth set', async t => {
  const base = await callerApp(t, clientOf(t, service.url))
  for (const headers of [{ authorization: `Bearer ${live.token}` }, { cookie: `a=1; sid=${live.token}` }]) {
    const res = await fetch(`${base}/me`, { headers })
    t.equal(res.status, 200)
    t.same(await res.json(), { email: 'ada@example.com', sessionId: live.id })
  }
  const posted = await fetch(`${base}/me`, { method: 'POST', headers: { authorization: `Bearer ${live.token}`, 'content-type': 'application/json' }, body: '{"a":1}' })
  t.same(await posted.json(), { id: userId, body: { a: 1 } }, 'a POST whose body was read is not taken for a caller that left')
  t.same(await (await fetch(`${base}/open`)).json(), { auth: null }, 'routes without it are left alone')
})

t.test('Express › 401 only for a definitive invalid, with WWW-Authenticate', async t => {
  const base = await callerApp(t, clientOf(t, service.url))
  for (const headers of [{ authorization: 'Bearer never-issued' }, { authorization: 'Basic dXNlcjpwYXNz' }, {}]) {
    const res = await fetch(`${base}/me`, { headers })
    t.equal(res.status, 401)
    t.equal(res.headers.get('www-authenticate'), 'Bearer')
    t.same(await res.json(), { statusCode: 401, error: 'Unauthorized', message: 'A valid session is required' })
  }
})

t.test('Express › 503 with Retry-After when the service cannot be reached, its cause told to onOutcome', async t => {
  const outcomes: OutcomeInfo[] = []
  const base = await callerApp(t, clientOf(t, await closedPortUrl(), outcomes))
  const res = await fetch(`${base}/me`, { headers: { authorization: `Bearer ${live.token}` } })
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '1')
  t.same(await res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'The session could not be checked; retry shortly' })
  t.match(outcomes, [{ outcome: 'unavailable', reason: 'connection', cause: 'ECONNREFUSED' }])
})

t.test('Express › a closed client goes to the app\'s error handler: a bug, not an outage', async t => {
  const client = clientOf(t, service.url)
  const base = await callerApp(t, client)
  await client.close()
  const res = await fetch(`${base}/me`, { headers: { authorization: `Bearer ${live.token}` } })
  t.equal(res.status, 500)
  t.same(await res.json(), { error: 'session-validator client is closed' })
})

t.test('Express › a caller that goes away ends the check', async t => {
  const upstream = await silentUpstream(t)
  const outcomes: OutcomeInfo[] = []
  const client = createSessionClient({ url: upstream.url, timeoutMs: 20_000, retries: 0, onOutcome: info => outcomes.push(info) })
  t.teardown(() => client.close())
  const ms = await upstream.leave(`${await callerApp(t, client)}/me`)
  t.ok(ms < 5000, `the check to the service was dropped ${Math.round(ms)} ms after the caller left (its deadline: 20 s)`)
  await waitFor('the outcome', () => outcomes.length === 1)
  t.match(outcomes, [{ outcome: 'unavailable', reason: 'aborted' }])
})
