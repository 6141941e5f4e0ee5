import type { Test } from 'tap'
import { createSession, createUser } from './fixtures.js'
import { echoUpstream, type EchoUpstream } from './echo-upstream.js'
import { COOKIE, PROXY_KEY, forwardAuthService, proxyConfig, type ForwardAuthService } from './forward-auth-proxy.js'
import type { TestDatabase } from './postgres.js'
import type { ProxyProcess } from './proxy-process.js'

type Tap = Test

export interface ProxyUnderTest {
  /** The file in deploy/forward-auth/. */
  config: string
  start(t: Tap, site: string): Promise<ProxyProcess>
  /** What the client gets when the service answers 429 (README, "Forward auth"). */
  throttled: number
}

export interface Running { service: ForwardAuthService, upstream: EchoUpstream, proxy: ProxyProcess }

export async function behind (t: Tap, db: TestDatabase, p: ProxyUnderTest, env: Record<string, string> = {}, apiKey?: string): Promise<Running> {
  const service = await forwardAuthService(t, db, env)
  const upstream = await echoUpstream(t)
  const proxy = await p.start(t, proxyConfig(p.config, { service: service.front.port, app: upstream.port }, apiKey))
  return { service, upstream, proxy }
}

export const call = (proxy: ProxyProcess, headers: Record<string, string> = {}, method = 'GET', path = '/orders/42?page=2') =>
  fetch(`http://127.0.0.1:${proxy.port}${path}`, { method, headers })

// What every proxy must show, with its README configuration, end to end.
export async function forwardAuthThrough (t: Tap, db: TestDatabase, p: ProxyUnderTest): Promise<Running> {
  const running = await behind(t, db, p)
  const { service, upstream, proxy } = running
  const userId = await createUser(db.sql, { email: 'ada@example.com', username: 'ada' })
  const cookie = (token: string) => ({ cookie: `theme=dark; ${COOKIE}=${token}` })
  const forged = { 'x-auth-request-user': 'forged-admin', 'x-auth-request-email': 'root@example.com', 'x-auth-request-session-id': 'forged' }

  await t.test('a valid cookie reaches the app with the identity headers, and nothing the client forged', async t => {
    const s = await createSession(db.sql, userId)
    const before = upstream.seen.length
    const res = await call(proxy, { ...cookie(s.token), ...forged })
    t.equal(res.status, 200)
    t.equal(upstream.seen.length, before + 1)
    const got = upstream.seen.at(-1)!.headers
    t.equal(got['x-auth-request-user'], userId)
    t.equal(got['x-auth-request-email'], 'ada@example.com')
    t.equal(got['x-auth-request-preferred-username'], 'ada')
    t.equal(got['x-auth-request-session-id'], s.id)
    t.equal(upstream.seen.at(-1)!.url, '/orders/42?page=2', 'the app gets the client\'s own path and query')
    const head = await call(proxy, cookie(s.token), 'HEAD')
    t.equal(head.status, 200, 'HEAD passes too')
  })

  await t.test('a user without a username: the app gets no forged value and no placeholder', async t => {
    const nameless = await createUser(db.sql, { username: null })
    const s = await createSession(db.sql, nameless)
    const res = await call(proxy, { ...cookie(s.token), 'x-auth-request-preferred-username': 'forged' })
    t.equal(res.status, 200)
    const got = upstream.seen.at(-1)!.headers['x-auth-request-preferred-username']
    t.ok(got === undefined || got === '', `empty or absent, got ${JSON.stringify(got)}`)
  })

  await t.test('unknown, malformed, missing and forged-only credentials: 401, and the app is never reached', async t => {
    const before = upstream.seen.length
    const credentials: Array<Record<string, string>> = [cookie('never-issued'), cookie('a'.repeat(600)), {}, forged, { authorization: 'Bearer never-issued' }]
    for (const headers of credentials) {
      const res = await call(proxy, headers)
      t.equal(res.status, 401, JSON.stringify(Object.keys(headers)))
      t.match(res.headers.get('www-authenticate'), /^Bearer/)
    }
    t.equal(upstream.seen.length, before, 'no 401 reached the app')
  })

  await t.test('a revoked session, cached a moment before: 401 at once, the app not reached', async t => {
    const s = await createSession(db.sql, userId)
    t.equal((await call(proxy, cookie(s.token))).status, 200)
    t.equal((await call(proxy, cookie(s.token))).status, 200)
    const revoke = await service.app.inject({ method: 'POST', url: '/sessions/revoke', headers: { 'x-api-key': PROXY_KEY }, payload: { token: s.token } })
    t.equal(revoke.json().revoked, 1)
    const before = upstream.seen.length
    t.equal((await call(proxy, cookie(s.token))).status, 401)
    t.equal(upstream.seen.length, before)
  })

  await t.test('Postgres cut: an uncached session gets 503 with Retry-After, never 401; a cached one still passes', async t => {
    const cached = await createSession(db.sql, userId)
    const uncached = await createSession(db.sql, userId)
    t.equal((await call(proxy, cookie(cached.token))).status, 200)
    service.postgres.cut()
    t.teardown(() => service.postgres.restore())
    const before = upstream.seen.length
    const res = await call(proxy, cookie(uncached.token))
    t.equal(res.status, 503, 'the client is told to retry, not that it is logged out')
    t.match(res.headers.get('retry-after'), /^[1-9]\d*$/)
    t.equal(upstream.seen.length, before, 'the app is not reached')
    t.equal((await call(proxy, cookie(cached.token))).status, 200, 'a cached session is answered from Redis')
    service.postgres.restore()
  })

  await t.test('the service unreachable: 503 with Retry-After, never 401 or 403', async t => {
    const s = await createSession(db.sql, userId)
    service.front.cut()
    t.teardown(() => service.front.restore())
    const res = await call(proxy, cookie(s.token))
    t.equal(res.status, 503)
    t.match(res.headers.get('retry-after'), /^[1-9]\d*$/)
    service.front.restore()
    t.equal((await call(proxy, cookie(s.token))).status, 200, 'and back when it is')
  })

  await t.test('the auth request carries the proxy\'s key, the cookie and the client address, and no body', async t => {
    // an echo app in the service's place records what the proxy asks
    const auth = await echoUpstream(t)
    const app = await echoUpstream(t)
    const spy = await p.start(t, proxyConfig(p.config, { service: auth.port, app: app.port }))
    const res = await call(spy, { cookie: `${COOKIE}=some-token`, 'x-forwarded-for': '198.51.100.9' }, 'POST')
    t.equal(res.status, 200)
    const asked = auth.seen.at(-1)!
    t.equal(asked.method, 'GET')
    t.match(asked.url, /^\/forward-auth(\?|$)/)
    t.equal(asked.headers['x-api-key'], PROXY_KEY)
    t.match(asked.headers.cookie, `${COOKIE}=some-token`)
    t.match(asked.headers['x-forwarded-for'], /127\.0\.0\.1$/, 'the address the proxy saw, last')
    t.equal(asked.headers['x-real-ip'], '127.0.0.1')
    t.equal(asked.headers['x-forwarded-method'], 'POST')
    t.notOk(asked.headers['content-length'] !== undefined && asked.headers['content-length'] !== '0', 'no body')
    t.notOk('x-api-key' in app.seen.at(-1)!.headers, 'the key never reaches the app')
  })

  await t.test(`throttled by the service (429): the client gets ${p.throttled} with Retry-After`, async t => {
    const limited = await behind(t, db, p, { RATE_LIMIT_MAX: '2' })
    const s = await createSession(db.sql, userId)
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await call(limited.proxy, cookie(s.token))).status)
    t.equal(statuses.slice(0, 2).join(), '200,200')
    const res = await call(limited.proxy, cookie(s.token))
    t.equal(res.status, p.throttled)
    t.match(res.headers.get('retry-after'), /^[1-9]\d*$/)
    t.not(res.status, 401)
  })

  return running
}
