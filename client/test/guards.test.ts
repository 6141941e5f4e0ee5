import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { authenticate, createSessionClient, type OutcomeInfo, type SessionClientOptions } from '../src/index.js'
import { authOf, sessionAuthPlugin } from '../src/fastify.js'
import { createSession, createUser } from '../../test/helpers/fixtures.js'
import { waitFor } from '../../test/helpers/ports.js'
import { closedPortUrl, startService } from './helpers/service.js'
import { silentUpstream } from './helpers/silent-upstream.js'

// The service without Redis, Postgres behind a fault proxy: a cut makes every
// validation a 503 from the service itself.
const service = await startService(t, { cuttablePostgres: true })
const { sql } = service.db
const userId = await createUser(sql, { email: 'grace@example.com', firstName: 'Grace' })
const live = await createSession(sql, userId)
const expired = await createSession(sql, userId, { expiresInMs: -1000 })
// never validated before the cut: an in-memory copy of `live` may rightly
// still answer in the moment before the service sees its Postgres go
const uncached = await createSession(sql, userId)

interface Teardown { teardown(fn: () => unknown): void }

// A caller's app: one protected route, one open one.
async function callerApp (t: Teardown, url: string, client: Partial<SessionClientOptions> = {}): Promise<{ app: FastifyInstance, logs: string[] }> {
  const logs: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { logs.push(line) } } } })
  // no retries: the service's 503 and its Retry-After come straight through
  await app.register(sessionAuthPlugin, { client: { url, timeoutMs: 5000, retries: 0, ...client }, cookie: 'sid' })
  app.get('/me', { preHandler: app.requireSession }, async request => ({ email: authOf(request).user.email, sessionId: authOf(request).session.id }))
  app.get('/open', async request => ({ auth: request.auth }))
  await app.ready()
  t.teardown(() => app.close())
  return { app, logs }
}

t.test('Fastify plugin', async t => {
  const { app, logs } = await callerApp(t, service.url)
  const me = (headers: Record<string, string>) => app.inject({ method: 'GET', url: '/me', headers })

  t.test('200 for a live session, by Bearer or by cookie, with request.auth set', async t => {
    const byBearer = await me({ authorization: `Bearer ${live.token}` })
    t.equal(byBearer.statusCode, 200)
    t.same(byBearer.json(), { email: 'grace@example.com', sessionId: live.id })
    const byCookie = await me({ cookie: `theme=dark; sid=${live.token}; other=1` })
    t.equal(byCookie.statusCode, 200)
    t.same(byCookie.json(), { email: 'grace@example.com', sessionId: live.id })
  })

  t.test('401 for a definitive invalid: unknown, expired, malformed, or no token at all', async t => {
    for (const [what, headers] of [
      ['unknown', { authorization: 'Bearer never-issued' }],
      ['expired', { cookie: `sid=${expired.token}` }],
      ['malformed', { authorization: 'Basic dXNlcjpwYXNz' }],
      ['none', {}]
    ] as const) {
      const res = await me(headers)
      t.equal(res.statusCode, 401, what)
      t.equal(res.headers['www-authenticate'], 'Bearer', what)
      t.same(res.json(), { statusCode: 401, error: 'Unauthorized', message: 'A valid session is required' }, what)
    }
  })

  t.test('routes without the preHandler are left alone', async t => {
    const res = await app.inject({ method: 'GET', url: '/open' })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { auth: null })
  })

  t.test('503 with Retry-After when the service cannot know (Postgres cut, session not cached), never 401', async t => {
    service.postgres!.cut()
    t.teardown(() => service.postgres!.restore())
    for (const token of [uncached.token, 'never-issued']) {
      const res = await me({ authorization: `Bearer ${token}` })
      t.equal(res.statusCode, 503)
      t.equal(res.headers['retry-after'], '1', 'the service\'s own Retry-After, passed on')
      t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'The session could not be checked; retry shortly' })
    }
    t.match(logs.join(''), /"reason":"service_unavailable","status":503,"msg":"session could not be checked"/)
    t.notMatch(logs.join(''), uncached.token, 'the token is not logged')
  })
})

t.test('Fastify plugin › 503 with Retry-After when the service itself cannot be reached, the cause logged', async t => {
  const { app, logs } = await callerApp(t, await closedPortUrl())
  const res = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${live.token}` } })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.match(logs.join(''), /"level":40,.*"reason":"connection","cause":"ECONNREFUSED","msg":"session could not be checked"/, 'at warn: it may be a restart')
  t.notMatch(logs.join(''), live.token)
})

t.test('Fastify plugin › a wrong host name is a 503 logged at error, with its cause: someone must fix the URL', async t => {
  const { app, logs } = await callerApp(t, 'http://nonexistent.invalid:3000')
  const res = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${live.token}` } })
  t.equal(res.statusCode, 503)
  t.match(logs.join(''), /"level":50,.*"reason":"dns","cause":"(ENOTFOUND|EAI_AGAIN)"/)
})

t.test('Fastify plugin › hooks that throw never make a 500', async t => {
  const hook = () => { throw new Error('hook bug') }
  process.once('warning', () => {}) // the client reports it once; not this test's concern
  for (const url of [service.url, await closedPortUrl()]) {
    const { app } = await callerApp(t, url, { onOutcome: hook, onRetry: hook, retries: 1 })
    const statuses = []
    for (const token of [live.token, 'never-issued']) {
      statuses.push((await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${token}` } })).statusCode)
    }
    t.same(statuses, url === service.url ? [200, 401] : [503, 503])
  }
})

t.test('Fastify plugin › authOf on a route without requireSession is that route\'s bug: a 500, never an anonymous pass', async t => {
  const app = Fastify()
  await app.register(sessionAuthPlugin, { client: { url: service.url } })
  app.get('/forgot', async request => authOf(request).user.id)
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/forgot', headers: { authorization: `Bearer ${live.token}` } })
  t.equal(res.statusCode, 500)
})

t.test('Fastify plugin › over a real connection: a POST with a body passes, and a caller that goes away ends the check', async t => {
  const upstream = await silentUpstream(t)
  const outcomes: OutcomeInfo[] = []
  for (const [name, url] of [['live', service.url], ['silent', upstream.url]] as const) {
    const app = Fastify()
    await app.register(sessionAuthPlugin, { client: { url, timeoutMs: 20_000, retries: 0, onOutcome: info => outcomes.push(info) } })
    app.post('/me', { preHandler: app.requireSession }, async request => ({ id: authOf(request).user.id, body: request.body }))
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    const port = (app.server.address() as { port: number }).port
    if (name === 'live') {
      const res = await fetch(`http://127.0.0.1:${port}/me`, { method: 'POST', headers: { authorization: `Bearer ${live.token}`, 'content-type': 'application/json' }, body: '{"a":1}' })
      t.same(await res.json(), { id: userId, body: { a: 1 } }, 'the request\'s signal does not fire for a request that is still there')
      continue
    }
    const ms = await upstream.leave(`http://127.0.0.1:${port}/me`, 'POST')
    t.ok(ms < 5000, `the check to the service was dropped ${Math.round(ms)} ms after the caller left (its deadline: 20 s)`)
    await waitFor('the outcome', () => outcomes.length === 2)
    t.match(outcomes[1], { call: 'validate', outcome: 'unavailable', reason: 'aborted', attempts: 1 })
  }
})

t.test('Fastify plugin › a client of the caller\'s own is used as given, and left open', async t => {
  const client = createSessionClient({ url: service.url })
  t.teardown(() => client.close())
  const app = Fastify()
  await app.register(sessionAuthPlugin, { client })
  app.get('/me', { preHandler: app.requireSession }, async request => authOf(request).user.id)
  const res = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${live.token}` } })
  t.equal(res.body, userId)
  await app.close()
  t.equal((await client.validate(live.token)).outcome, 'valid', 'still usable after the app closed')
})

t.test('authenticate() for servers without Fastify', async t => {
  const client = createSessionClient({ url: service.url })
  t.teardown(() => client.close())

  t.test('a fetch Request (Next.js route handlers)', async t => {
    const request = new Request('http://studio.test/api/me', { headers: { authorization: `Bearer ${live.token}` } })
    const result = await authenticate(client, request)
    t.equal(result.outcome, 'valid')
    t.equal(result.outcome === 'valid' && result.user.email, 'grace@example.com')
  })

  t.test('Node\'s IncomingHttpHeaders, token in a cookie', async t => {
    const result = await authenticate(client, { headers: { cookie: `sid="${live.token}"` } }, { cookie: 'sid' })
    t.equal(result.outcome, 'valid', 'a quoted cookie value loses its quotes')
  })

  t.test('no token: invalid, missing; without `cookie`, a cookie is not read', async t => {
    t.same(await authenticate(client, { headers: {} }), { outcome: 'invalid', reason: 'missing' })
    t.same(await authenticate(client, { headers: { cookie: `sid=${live.token}` } }), { outcome: 'invalid', reason: 'missing' })
  })
})
