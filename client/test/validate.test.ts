import { createServer as createHttpServer } from 'node:http'
import { createServer, connect, type Socket } from 'node:net'
import t from 'tap'
import { createSessionClient, SessionValidatorError, type Validation } from '../src/index.js'
import { createSession, createUser } from '../../test/helpers/fixtures.js'
import { closedPortUrl, startService } from './helpers/service.js'

const service = await startService(t, { redis: true })
const { sql } = service.db
const client = createSessionClient({ url: service.url })
t.teardown(() => client.close())
const userId = await createUser(sql, { email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace', username: 'ada' })

async function raw (token: string): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await fetch(`${service.url}/sessions/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

t.test('validate › a live session is valid, with its session and user exactly as the service sent them', async t => {
  const s = await createSession(sql, userId, { ipAddress: '10.1.2.3', userAgent: 'Mozilla/5.0' })
  const result = await client.validate(s.token)
  t.equal(result.outcome, 'valid')
  if (result.outcome !== 'valid') return
  t.match(result.session, { id: s.id, userId, ipAddress: '10.1.2.3', userAgent: 'Mozilla/5.0', lastActivityAt: null })
  t.match(result.session.expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.same(result.user, { id: userId, email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace', username: 'ada' })
  const direct = await raw(s.token)
  t.same({ session: result.session, user: result.user }, { session: direct.body.session, user: direct.body.user }, 'nothing renamed, added or dropped')
})

t.test('validate › a token no session has is invalid: not_found', async t => {
  t.same(await client.validate('no-such-token-' + Date.now()), { outcome: 'invalid', reason: 'not_found' })
})

t.test('validate › an expired session is invalid: expired', async t => {
  const s = await createSession(sql, userId, { expiresInMs: -60_000 })
  t.same(await client.validate(s.token), { outcome: 'invalid', reason: 'expired' })
})

t.test('validate › a malformed token is invalid: malformed, and no request is made for it', async t => {
  // pointed at nothing: a request would come back `unavailable`, not `invalid`
  const offline = createSessionClient({ url: await closedPortUrl() })
  t.teardown(() => offline.close())
  for (const token of ['', 'has space', 'x'.repeat(513), 'ünïcode', undefined as unknown as string]) {
    t.same(await offline.validate(token), { outcome: 'invalid', reason: 'malformed' }, JSON.stringify(token)?.slice(0, 20) ?? 'undefined')
  }
  t.same(await client.validate('x'.repeat(512)), { outcome: 'invalid', reason: 'not_found' }, '512 characters are well formed')
})

t.test('revoke › by token: 1, then the session is invalid and a second revoke is 0', async t => {
  const s = await createSession(sql, userId)
  t.equal((await client.validate(s.token)).outcome, 'valid', 'cached first')
  t.equal(await client.revoke({ token: s.token }), 1)
  t.same(await client.validate(s.token), { outcome: 'invalid', reason: 'not_found' })
  t.equal(await client.revoke({ token: s.token }), 0)
})

t.test('revoke › by session id', async t => {
  const s = await createSession(sql, userId)
  t.equal((await client.validate(s.token)).outcome, 'valid')
  t.equal(await client.revoke({ sessionId: s.id.toUpperCase() }), 1)
  t.same(await client.validate(s.token), { outcome: 'invalid', reason: 'not_found' })
})

t.test('revoke › a malformed token revokes nothing and asks nobody; a malformed session id is the caller\'s bug and throws', async t => {
  t.equal(await client.revoke({ token: 'has space' }), 0)
  const err = await client.revoke({ sessionId: 'not-a-uuid' }).catch((e: unknown) => e)
  t.type(err, SessionValidatorError)
  t.match(err, { reason: 'bad_request', status: 400, message: /sessionId/ })
})

t.test('revokeAll › every session of the user, cached or not', async t => {
  const other = await createUser(sql)
  const sessions = await Promise.all([1, 2, 3].map(() => createSession(sql, other)))
  const bystander = await createSession(sql, userId)
  t.equal((await client.validate(sessions[0]!.token)).outcome, 'valid', 'one of them cached')
  t.equal(await client.revokeAll(other), 3)
  for (const s of sessions) t.same(await client.validate(s.token), { outcome: 'invalid', reason: 'not_found' })
  t.equal((await client.validate(bystander.token)).outcome, 'valid', 'another user\'s session is left alone')
  t.equal(await client.revokeAll(other), 0)
})

t.test('revokeAll › keep spares that one session ("sign out everywhere else"), by token or by id', async t => {
  const other = await createUser(sql)
  const [current, elsewhere] = await Promise.all([createSession(sql, other), createSession(sql, other)])
  t.equal(await client.revokeAll(other, { keep: { token: current.token } }), 1)
  t.equal((await client.validate(current.token)).outcome, 'valid')
  t.same(await client.validate(elsewhere.token), { outcome: 'invalid', reason: 'not_found' })
  const third = await createSession(sql, other)
  t.equal(await client.revokeAll(other, { keep: { sessionId: current.id } }), 1)
  t.equal((await client.validate(current.token)).outcome, 'valid')
  t.same(await client.validate(third.token), { outcome: 'invalid', reason: 'not_found' })
})

t.test('the pool › sequential calls reuse kept-alive connections; concurrent ones stay within `connections`', async t => {
  const target = Number(new URL(service.url).port)
  let opened = 0
  const sockets = new Set<Socket>()
  const counting = createServer(down => {
    opened++
    const up = connect(target, '127.0.0.1')
    sockets.add(down).add(up)
    down.pipe(up).pipe(down)
    down.on('error', () => up.destroy())
    up.on('error', () => down.destroy())
  })
  await new Promise<void>(resolve => counting.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); counting.close(() => resolve()) }))
  const port = (counting.address() as { port: number }).port
  const pooled = createSessionClient({ url: `http://127.0.0.1:${port}`, connections: 4 })
  t.teardown(() => pooled.close())
  const s = await createSession(sql, userId)

  for (let i = 0; i < 30; i++) t.equal((await pooled.validate(s.token)).outcome, 'valid')
  // undici may open a second connection while the first is being released
  // after a response (measured: 1, 2, 2, 2...); never one per call
  t.ok(opened <= 2, `30 sequential validations, ${opened} connections`)
  const results: Validation[] = await Promise.all(Array.from({ length: 40 }, () => pooled.validate(s.token)))
  t.ok(results.every(r => r.outcome === 'valid'))
  t.ok(opened <= 4, `40 concurrent validations, ${opened} connections`)
})

t.test('with SERVICE_API_KEYS', async t => {
  const key = 'client-test-key-'.padEnd(32, 'k')
  const keyed = await startService(t, { db: service.db, env: { SERVICE_API_KEYS: key } })
  const s = await createSession(sql, userId)

  t.test('a client without the key hears `forbidden` (unavailable), never invalid, and is not retried', async t => {
    const retries: unknown[] = []
    const keyless = createSessionClient({ url: keyed.url, onRetry: info => retries.push(info) })
    t.teardown(() => keyless.close())
    t.same(await keyless.validate(s.token), { outcome: 'unavailable', reason: 'forbidden', status: 403 })
    t.same(retries, [])
    const err = await keyless.revoke({ token: s.token }).catch((e: unknown) => e)
    t.match(err, { name: 'SessionValidatorError', reason: 'forbidden', status: 403 })
  })

  t.test('a client with the key sends it as x-api-key', async t => {
    const keyedClient = createSessionClient({ url: keyed.url, apiKey: key })
    t.teardown(() => keyedClient.close())
    t.equal((await keyedClient.validate(s.token)).outcome, 'valid')
    t.equal(await keyedClient.revoke({ token: s.token }), 1)
  })
})

t.test('options › a bad URL or a bad number is refused when the client is made', async t => {
  t.throws(() => createSessionClient({ url: 'ftp://example.com' }), /http: or https:/)
  t.throws(() => createSessionClient({ url: service.url, timeoutMs: 0 }), /timeoutMs/)
  t.throws(() => createSessionClient({ url: service.url, retries: -1 }), /retries/)
  t.throws(() => createSessionClient({ url: service.url, connections: 1.5 }), /connections/)
  t.throws(() => createSessionClient({ url: service.url, timeoutMs: Number.NaN }), /timeoutMs/)
  const c = createSessionClient({ url: service.url })
  t.teardown(() => c.close())
  await t.rejects(c.validate('token', { timeoutMs: Number.NaN }), /timeoutMs/)
})

t.test('the service\'s own 400 and 413 are what the client takes for them (replayed to it as they came)', async t => {
  const own = async (body: string) => {
    const res = await fetch(`${service.url}/sessions/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') ?? '' }
  }
  const refused = await own(JSON.stringify({ token: 'has space' }))
  const tooLarge = await own(JSON.stringify({ token: 'x'.repeat(5000) }))
  t.match(refused, { status: 400, body: /"code":"SV_BAD_REQUEST"/ })
  t.match(tooLarge, { status: 413, body: /"code":"FST_ERR_CTP_BODY_TOO_LARGE"/ })
  for (const answer of [refused, tooLarge]) {
    const replay = createHttpServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body)) })
    await new Promise<void>(resolve => replay.listen(0, '127.0.0.1', resolve))
    const replayed = createSessionClient({ url: `http://127.0.0.1:${(replay.address() as { port: number }).port}` })
    // a well-formed token: only a rule stricter than the client's would make the service answer so
    t.same(await replayed.validate('well-formed'), { outcome: 'invalid', reason: 'malformed' }, `the service's ${answer.status}`)
    await replayed.close()
    await new Promise(resolve => replay.close(resolve))
  }
})

t.test('a base URL with a path: every route is under it', async t => {
  // the service has no /prefix: a 404 is "could not check", never a logout
  const prefixed = createSessionClient({ url: `${service.url}/prefix/` })
  t.teardown(() => prefixed.close())
  t.same(await prefixed.validate('some-token'), { outcome: 'unavailable', reason: 'unexpected_response', status: 404 })
  const err = await prefixed.revokeAll(userId).catch((e: unknown) => e)
  t.match(err, { reason: 'unexpected_response', status: 404, message: /HTTP 404/ })
})
