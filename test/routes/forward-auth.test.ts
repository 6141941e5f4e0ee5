import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import type { InjectOptions } from 'fastify'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'

// GET /forward-auth through app.inject, in the request shapes each proxy
// documents. Real nginx and Caddy: test/forward-auth/*.test.ts.
const db = await freshDatabase(t)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)
const env = { FORWARD_AUTH_COOKIE: 'sv_session', FORWARD_AUTH_LOGIN_URL: 'https://login.example.com/signin' }
const { app, logs } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })
const userId = await createUser(db.sql, { email: 'ada@example.com', username: 'ada' })

const IDENTITY = ['x-auth-request-user', 'x-auth-request-email', 'x-auth-request-preferred-username', 'x-auth-request-session-id']
const forwardAuth = (opts: Omit<InjectOptions, 'url'> & { url?: string } = {}) => app.inject({ method: 'GET', url: '/forward-auth', ...opts })

t.test('GET /forward-auth › a valid session cookie: 200, empty body, the identity headers, a miss then a hit', async t => {
  const s = await createSession(db.sql, userId)
  const first = await forwardAuth({ headers: { cookie: `theme=dark; sv_session=${s.token}; other=1` } })
  t.equal(first.statusCode, 200)
  t.equal(first.payload, '')
  t.equal(first.headers['x-auth-request-user'], userId)
  t.equal(first.headers['x-auth-request-email'], 'ada@example.com')
  t.equal(first.headers['x-auth-request-preferred-username'], 'ada')
  t.equal(first.headers['x-auth-request-session-id'], s.id)
  t.equal(first.headers['x-session-cache'], 'miss')
  t.equal(first.headers['cache-control'], 'no-store', 'no proxy may cache one user\'s answer')
  const second = await forwardAuth({ headers: { cookie: `sv_session="${s.token}"` } })
  t.equal(second.statusCode, 200, 'a quoted cookie value is the same token')
  t.equal(second.headers['x-session-cache'], 'hit')
})

t.test('GET /forward-auth › Authorization: Bearer, which wins over the cookie', async t => {
  const s = await createSession(db.sql, userId)
  const other = await createSession(db.sql, userId)
  const res = await forwardAuth({ headers: { authorization: `Bearer ${s.token}`, cookie: `sv_session=${other.token}` } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-auth-request-session-id'], s.id)
  const basic = await forwardAuth({ headers: { authorization: 'Basic dXNlcjpwdw==', cookie: `sv_session=${other.token}` } })
  t.equal(basic.statusCode, 200, 'another scheme belongs to the upstream app: the cookie is read')
  t.equal(basic.headers['x-auth-request-session-id'], other.id)
})

t.test('GET /forward-auth › 401 with an empty body and a Bearer challenge when not valid', async t => {
  const expired = await createSession(db.sql, userId, { expiresInMs: -1000 })
  const cases: Array<[string, Record<string, string>, string]> = [
    ['no token at all', {}, 'Bearer'],
    ['another cookie only', { cookie: 'session=abc' }, 'Bearer'],
    ['an unknown token', { cookie: 'sv_session=never-issued' }, 'Bearer error="invalid_token"'],
    ['an expired session', { cookie: `sv_session=${expired.token}` }, 'Bearer error="invalid_token"'],
    ['a malformed token (513 characters)', { authorization: `Bearer ${'a'.repeat(513)}` }, 'Bearer error="invalid_token"'],
    ['a malformed Bearer (a space inside)', { authorization: 'Bearer ab cd' }, 'Bearer error="invalid_token"'],
    ['Bearer and nothing', { authorization: 'Bearer' }, 'Bearer error="invalid_token"'],
    ['an empty cookie', { cookie: 'sv_session=' }, 'Bearer error="invalid_token"']
  ]
  for (const [name, headers, challenge] of cases) {
    const res = await forwardAuth({ headers })
    t.equal(res.statusCode, 401, `${name}: 401, never 400 (a proxy can act on no 400)`)
    t.equal(res.payload, '', `${name}: empty body`)
    t.equal(res.headers['www-authenticate'], challenge, name)
    t.equal(res.headers['x-forward-auth-login'], 'https://login.example.com/signin', `${name}: the login hint`)
    for (const h of IDENTITY) t.notOk(h in res.headers, `${name}: no ${h}`)
  }
  t.notOk(logs.join('').includes(expired.token))
})

t.test('GET /forward-auth › a revoked session is 401 at once, cached or not', async t => {
  const s = await createSession(db.sql, userId)
  t.equal((await forwardAuth({ headers: { cookie: `sv_session=${s.token}` } })).statusCode, 200)
  t.equal((await forwardAuth({ headers: { cookie: `sv_session=${s.token}` } })).headers['x-session-cache'], 'hit')
  const revoked = await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { sessionId: s.id } })
  t.same(revoked.json(), { revoked: 1 })
  t.equal((await forwardAuth({ headers: { cookie: `sv_session=${s.token}` } })).statusCode, 401)
})

t.test('HEAD /forward-auth › the same answers without a body', async t => {
  const s = await createSession(db.sql, userId)
  const ok = await forwardAuth({ method: 'HEAD', headers: { cookie: `sv_session=${s.token}` } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.payload, '')
  t.equal(ok.headers['x-auth-request-user'], userId)
  const no = await forwardAuth({ method: 'HEAD', headers: { cookie: 'sv_session=never-issued' } })
  t.equal(no.statusCode, 401)
})

t.test('GET /forward-auth › Traefik\'s request shape: GET, X-Forwarded-*, any query', async t => {
  const s = await createSession(db.sql, userId)
  // Traefik copies every client header and adds these (its forwardAuth docs)
  const headers = {
    cookie: `sv_session=${s.token}`,
    'x-forwarded-method': 'POST',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'app.example.com',
    'x-forwarded-uri': '/orders/42?x=1',
    'x-forwarded-for': '203.0.113.7',
    'x-auth-request-user': 'forged-by-the-client'
  }
  const res = await forwardAuth({ url: '/forward-auth?rd=https%3A%2F%2Fapp.example.com', headers })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-auth-request-user'], userId, 'the answer names the session\'s user, whatever the client sent')
  const denied = await forwardAuth({ headers: { ...headers, cookie: 'sv_session=never-issued' } })
  t.equal(denied.statusCode, 401)
  t.notOk('x-auth-request-user' in denied.headers, 'nothing for Traefik to copy on a 401')
})

t.test('any method under /forward-auth/ › Envoy ext_authz HTTP: original method, path after the prefix, 200 only for allow', async t => {
  const s = await createSession(db.sql, userId)
  // Envoy sends only the allowed headers (plus Host, :method, :path,
  // Authorization), a content-length of 0 and no body.
  for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const) {
    const ok = await app.inject({ method, url: '/forward-auth/api/orders/42?page=2', headers: { host: 'app.example.com', cookie: `sv_session=${s.token}`, 'content-length': '0' } })
    t.equal(ok.statusCode, 200, `${method}: 200 (Envoy allows only on exactly 200)`)
    t.equal(ok.headers['x-auth-request-session-id'], s.id)
    const no = await app.inject({ method, url: '/forward-auth/api/orders/42', headers: { host: 'app.example.com', 'content-length': '0' } })
    t.equal(no.statusCode, 401, `${method} without a token: 401`)
  }
  const typed = await app.inject({
    method: 'POST',
    url: '/forward-auth/upload',
    headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json', 'content-length': '0' }
  })
  t.equal(typed.statusCode, 200, 'a JSON content type with no body is no 400: no body is ever read')
  const root = await app.inject({ method: 'POST', url: '/forward-auth', headers: { authorization: `Bearer ${s.token}` } })
  t.equal(root.statusCode, 200, 'path_prefix alone, for the root path')
})

t.test('identity values that are not plain ASCII are percent-encoded UTF-8; a null username is an empty header', async t => {
  const uid = await createUser(db.sql, { email: 'zoë+100%@example.com', username: 'Zoë 🚀' })
  const s = await createSession(db.sql, uid)
  const res = await forwardAuth({ headers: { cookie: `sv_session=${s.token}` } })
  t.equal(res.statusCode, 200)
  const email = res.headers['x-auth-request-email'] as string
  t.equal(email, 'zo%C3%AB+100%25@example.com')
  t.equal(decodeURIComponent(email), 'zoë+100%@example.com')
  t.equal(decodeURIComponent(res.headers['x-auth-request-preferred-username'] as string), 'Zoë 🚀')
  const nameless = await createUser(db.sql, { username: null })
  const n = await createSession(db.sql, nameless)
  const res2 = await forwardAuth({ headers: { cookie: `sv_session=${n.token}` } })
  t.equal(res2.headers['x-auth-request-preferred-username'], '', 'sent empty, not left out')
})

t.test('the OpenAPI document describes GET /forward-auth with an operationId and its answers', async t => {
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  const paths = Object.keys(doc.paths)
  t.ok(paths.includes('/forward-auth'))
  t.notOk(paths.some((p: string) => p.startsWith('/forward-auth/')), 'the Envoy wildcard is not documented as a path of its own')
  const op = doc.paths['/forward-auth'].get
  t.equal(op.operationId, 'forwardAuth')
  t.same(Object.keys(doc.paths['/forward-auth']), ['get'], 'one documented operation (no duplicate operationId)')
  for (const code of ['200', '401', '403', '429', '503']) t.ok(op.responses[code], `documents ${code}`)
  t.ok(op.responses['200'].headers['X-Auth-Request-User'])
  t.notOk(op.responses['200'].content, '200 has no body')
})

t.test('docs/forward-auth.md shows the proxy configurations of deploy/forward-auth/ as they are', async t => {
  const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')
  const page = read('docs/forward-auth.md')
  for (const file of ['nginx.conf', 'Caddyfile', 'traefik.yml', 'envoy.yaml']) {
    const text = read(`deploy/forward-auth/${file}`).trimEnd()
    t.ok(page.includes('\n' + text + '\n```'), `docs/forward-auth.md has ${file} verbatim`)
  }
  for (const file of ['traefik.yml', 'envoy.yaml']) t.doesNotThrow(() => parse(read(`deploy/forward-auth/${file}`)), `${file} is YAML`)
})
