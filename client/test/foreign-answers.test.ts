import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import t from 'tap'
import { MockAgent } from 'undici'
import { createSessionClient, SessionValidatorError, type OutcomeInfo, type RetryInfo } from '../src/index.js'
import { VERSION } from '../src/version.js'

// What the client does with answers the service never gives but something
// in front of it might (a proxy's error page, a 502): never a logout. A plain
// HTTP server plays that something; the service's own answers are pinned
// against the real service in the other files.
type Handler = (req: IncomingMessage, res: ServerResponse) => void
let handler: Handler = (_req, res) => { res.end() }
let lastBody = ''
let lastHeaders: IncomingHttpHeaders = {}
let requests = 0
const server = createServer((req, res) => {
  requests++
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => { body += chunk })
  req.on('end', () => { lastBody = body; lastHeaders = req.headers; handler(req, res) })
})
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise(resolve => server.close(resolve)))
const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
const retries: RetryInfo[] = []
const client = createSessionClient({ url, timeoutMs: 1000, onRetry: info => retries.push(info) })
t.teardown(() => client.close())
t.beforeEach(() => { retries.length = 0 })

function answer (status: number, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Handler {
  return (_req, res) => { res.writeHead(status, headers).end(body) }
}

t.test('a 401 that is not the service\'s { valid: false, reason } is unavailable, not invalid', async t => {
  handler = answer(401, '<html>Unauthorized</html>', { 'content-type': 'text/html' })
  t.same(await client.validate('some-token'), { outcome: 'unavailable', reason: 'unexpected_response', status: 401 })
})

t.test('a reason the client does not know yet is still a definitive invalid', async t => {
  handler = answer(401, '{"valid":false,"reason":"idle"}')
  t.same(await client.validate('some-token'), { outcome: 'invalid', reason: 'idle' })
})

t.test('a 200 without a session and a user, or not JSON at all, is unavailable', async t => {
  handler = answer(200, '{"valid":true}')
  t.same(await client.validate('some-token'), { outcome: 'unavailable', reason: 'unexpected_response', status: 200 })
  handler = answer(200, 'not json')
  t.same(await client.validate('some-token'), { outcome: 'unavailable', reason: 'unexpected_response', status: 200 })
})

t.test('a 500 is unavailable and not retried: a bug does not heal in 50 ms', async t => {
  handler = answer(500, '{"statusCode":500}')
  t.same(await client.validate('some-token'), { outcome: 'unavailable', reason: 'unexpected_response', status: 500 })
  t.same(retries, [])
})

t.test('a 502 is retried, after a Retry-After given as an HTTP date', async t => {
  let calls = 0
  handler = (req, res) => {
    if (calls++ === 0) return answer(502, '', { 'retry-after': new Date(Date.now() + 1000).toUTCString() })(req, res)
    answer(200, JSON.stringify({ valid: true, session: { id: 's' }, user: { id: 'u' } }))(req, res)
  }
  // an HTTP date has whole seconds: the wait is anything up to 1000 ms, so the
  // call's deadline must leave room for it and the second request
  const result = await client.validate('some-token', { timeoutMs: 3000 })
  t.equal(result.outcome, 'valid')
  t.equal(retries.length, 1)
  t.match(retries[0], { reason: 'service_unavailable', status: 502 })
  t.ok(retries[0]!.waitMs > 0 && retries[0]!.waitMs <= 1000, `waited ${retries[0]!.waitMs} ms`)
})

t.test('a 429 without Retry-After backs off 50 ms, then 100 ms', async t => {
  handler = answer(429, '')
  t.same(await client.validate('some-token'), { outcome: 'unavailable', reason: 'rate_limited', status: 429 })
  t.same(retries.map(r => r.waitMs), [50, 100])
})

t.test('revoke › an answer without a count throws, never resolves as done', async t => {
  handler = answer(200, '{}')
  t.match(await client.revoke({ sessionId: '00000000-0000-0000-0000-000000000000' }).catch((e: unknown) => e), { reason: 'unexpected_response', status: 200 })
  handler = answer(400, 'nope', { 'content-type': 'text/plain' })
  t.match(await client.revoke({ token: 'abc' }).catch((e: unknown) => e), { reason: 'unexpected_response', status: 400, message: /HTTP 400/ },
    'a 400 that is not the service\'s is not the caller\'s bad request either')
  handler = answer(400, JSON.stringify({ statusCode: 400, code: 'SV_BAD_REQUEST', error: 'Bad Request', message: 'sessionId must be a uuid' }))
  t.match(await client.revoke({ token: 'abc' }).catch((e: unknown) => e), { reason: 'bad_request', status: 400, message: /refused the revoke: sessionId must be a uuid/ })
})

t.test('revokeAll › keep is sent as { keep }, the user id escaped into the path', async t => {
  let path = ''
  handler = (req, res) => { path = req.url ?? ''; answer(200, '{"revoked":2}')(req, res) }
  t.equal(await client.revokeAll('u/1', { keep: { sessionId: 'abc' } }), 2)
  t.equal(path, '/users/u%2F1/sessions/revoke')
  t.same(JSON.parse(lastBody), { keep: { sessionId: 'abc' } })
  t.equal(await client.revokeAll('u'), 2)
  t.same(JSON.parse(lastBody), {}, 'and without keep, an empty object')
})

t.test('the caller\'s signal ends a wait for Retry-After at once', async t => {
  handler = answer(503, '', { 'retry-after': '1' })
  const controller = new AbortController()
  let waiting = 0
  // aborted 50 ms into the 1000 ms wait before the retry
  const patient = createSessionClient({ url, timeoutMs: 3000, onRetry: () => { waiting++; setTimeout(() => controller.abort(), 50) } })
  t.teardown(() => patient.close())
  const start = performance.now()
  t.same(await patient.validate('some-token', { signal: controller.signal }), { outcome: 'unavailable', reason: 'aborted' })
  const ms = performance.now() - start
  t.equal(waiting, 1, 'it was waiting to retry')
  t.ok(ms < 900, `${Math.round(ms)} ms, not the 1000 ms wait`)
})

// The bodies the service itself sends (pinned against the real service in validate.test.ts).
const SERVICE_400 = JSON.stringify({ statusCode: 400, code: 'SV_BAD_REQUEST', error: 'Bad Request', message: 'token must be 1-512 visible ASCII characters (0x21-0x7E)' })
const SERVICE_413 = JSON.stringify({ statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE', error: 'Payload Too Large', message: 'Request body is too large' })

t.test('a 400 or 413 is invalid only when it is the service\'s own; anything else is unavailable, not retried', async t => {
  for (const [what, status, body, headers] of [
    ['nginx\'s page for plain HTTP on its HTTPS port', 400, '<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head></html>', { 'content-type': 'text/html' }],
    ['another app\'s JSON', 400, '{"error":"bad request"}', undefined],
    ['a Fastify error of another kind', 400, JSON.stringify({ statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message: 'body must be object' }), undefined],
    ['the service\'s code with another status in the body', 400, JSON.stringify({ statusCode: 401, code: 'SV_BAD_REQUEST' }), undefined],
    ['a proxy\'s body-size page', 413, '<html>413 Request Entity Too Large</html>', { 'content-type': 'text/html' }],
    ['no body', 413, '', undefined]
  ] as const) {
    handler = answer(status, body, headers)
    t.same(await client.validate('some-token'), { outcome: 'unavailable', reason: 'unexpected_response', status }, what)
  }
  t.same(retries, [])
  handler = answer(400, SERVICE_400)
  t.same(await client.validate('some-token'), { outcome: 'invalid', reason: 'malformed' }, 'the service\'s 400: it refuses the token itself')
  handler = answer(413, SERVICE_413)
  t.same(await client.validate('some-token'), { outcome: 'invalid', reason: 'malformed' }, 'the service\'s 413')
})

t.test('every request says who sends it, carries the caller\'s headers, and keeps the URL\'s query string', async t => {
  const queried = createSessionClient({ url: `${url}/sv/?tenant=studio`, apiKey: 'k'.repeat(32) })
  t.teardown(() => queried.close())
  let path = ''
  handler = (req, res) => { path = req.url ?? ''; answer(401, '{"valid":false,"reason":"not_found"}')(req, res) }
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  await queried.validate('some-token', { headers: { traceparent, 'X-Request-Id': 'req-1', 'Content-Type': 'text/plain', 'x-api-key': 'other' } })
  t.equal(path, '/sv/sessions/validate?tenant=studio')
  t.equal(lastHeaders['user-agent'], `session-validator-client/${VERSION}`)
  t.equal(lastHeaders.traceparent, traceparent)
  t.equal(lastHeaders['x-request-id'], 'req-1')
  t.equal(lastHeaders['content-type'], 'application/json', 'the client\'s own headers win')
  t.equal(lastHeaders['x-api-key'], 'k'.repeat(32))
  await queried.revokeAll('u', { headers: { 'x-request-id': 'req-2' } })
    .catch(() => {})
  t.equal(path, '/sv/users/u/sessions/revoke?tenant=studio')
  t.equal(lastHeaders['x-request-id'], 'req-2')
  await t.rejects(queried.validate('some-token', { headers: { 'x-request-id': 'a\nb' } }), TypeError, 'a header that cannot be sent is the caller\'s bug')
})

t.test('a URL the client could not honour is refused when the client is made', async t => {
  t.throws(() => createSessionClient({ url: 'http://user:secret@127.0.0.1:1' }), /credentials/)
  t.throws(() => createSessionClient({ url: `${url}/#top` }), /fragment/)
})

t.test('hooks › one that throws, or rejects, never turns an answer into a rejection', async t => {
  handler = answer(503, '')
  const warnings: string[] = []
  const onWarning = (w: Error) => { warnings.push(w.message) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  for (const [what, hook] of [
    ['throws', () => { throw new Error('hook bug') }],
    ['rejects', async () => { throw new Error('async hook bug') }]
  ] as const) {
    const careless = createSessionClient({ url, timeoutMs: 1000, onRetry: hook, onOutcome: hook })
    t.teardown(() => careless.close())
    t.same(await careless.validate('some-token'), { outcome: 'unavailable', reason: 'service_unavailable', status: 503 }, what)
    t.same(await careless.validate('other-token'), { outcome: 'unavailable', reason: 'service_unavailable', status: 503 }, `${what}, again`)
  }
  await new Promise(resolve => setImmediate(resolve))
  t.same(warnings.sort(), [
    'the onOutcome hook threw (Error: async hook bug); the client ignores it',
    'the onOutcome hook threw (Error: hook bug); the client ignores it',
    'the onRetry hook threw (Error: async hook bug); the client ignores it',
    'the onRetry hook threw (Error: hook bug); the client ignores it'
  ], 'each reported once, as a process warning')
})

t.test('hooks › onOutcome hears every call once, with its outcome and latency', async t => {
  const outcomes: OutcomeInfo[] = []
  const told = createSessionClient({ url, timeoutMs: 1000, retries: 1, onOutcome: info => outcomes.push(info) })
  t.teardown(() => told.close())
  handler = answer(200, JSON.stringify({ valid: true, session: { id: 's' }, user: { id: 'u' } }))
  await told.validate('some-token')
  handler = answer(401, '{"valid":false,"reason":"expired"}')
  await told.validate('some-token')
  await told.validate('has space')
  handler = answer(503, '', { 'retry-after': '0' })
  await told.validate('some-token')
  handler = answer(200, '{"revoked":1}')
  await told.revoke({ token: 'some-token' })
  handler = answer(403, '')
  await told.revokeAll('u').catch(() => {})
  t.match(outcomes, [
    { call: 'validate', outcome: 'valid', attempts: 1 },
    { call: 'validate', outcome: 'invalid', reason: 'expired', attempts: 1 },
    { call: 'validate', outcome: 'invalid', reason: 'malformed', attempts: 0 },
    { call: 'validate', outcome: 'unavailable', reason: 'service_unavailable', status: 503, attempts: 2 },
    { call: 'revoke', outcome: 'revoked', attempts: 1 },
    { call: 'revokeAll', outcome: 'failed', reason: 'forbidden', status: 403, attempts: 1 }
  ])
  t.equal(outcomes.length, 6)
  t.ok(outcomes.every(o => typeof o.latencyMs === 'number' && o.latencyMs >= 0 && o.latencyMs < 1000), 'each with its latency in ms')
  t.notOk('reason' in outcomes[0]!, 'a valid outcome has no reason')
})

t.test('per-call timeoutMs › any finite number: a fraction, or a deadline already past (timeout, no request)', async t => {
  handler = answer(401, '{"valid":false,"reason":"not_found"}')
  const deadline = performance.now() + 800
  t.same(await client.validate('some-token', { timeoutMs: deadline - performance.now() }), { outcome: 'invalid', reason: 'not_found' })
  t.same(await client.validate('some-token', { timeoutMs: 0.5 + 300 }), { outcome: 'invalid', reason: 'not_found' })
  const before = requests
  t.same(await client.validate('some-token', { timeoutMs: -5 }), { outcome: 'unavailable', reason: 'timeout' })
  t.same(await client.validate('some-token', { timeoutMs: 0 }), { outcome: 'unavailable', reason: 'timeout' })
  t.equal(requests, before, 'no request once the deadline has passed')
  await t.rejects(client.validate('some-token', { timeoutMs: Number.NaN }), TypeError)
  await t.rejects(client.validate('some-token', { timeoutMs: Number.POSITIVE_INFINITY }), /timeoutMs must be a finite number/)
  t.doesNotThrow(() => createSessionClient({ url, timeoutMs: 1500.5 }).close(), 'and so does the client\'s default')
})

t.test('a closed client rejects every call at once, and asks nobody', async t => {
  const closing = createSessionClient({ url })
  handler = answer(401, '{"valid":false,"reason":"not_found"}')
  t.equal((await closing.validate('some-token')).outcome, 'invalid')
  await closing.close()
  await closing.close()
  const before = requests
  const start = performance.now()
  for (const call of [() => closing.validate('some-token'), () => closing.revoke({ token: 'some-token' }), () => closing.revokeAll('u')]) {
    const err = await call().catch((e: unknown) => e)
    t.type(err, SessionValidatorError)
    t.match(err, { reason: 'closed', message: 'session-validator client is closed' })
  }
  t.ok(performance.now() - start < 50, 'at once: no retries, no waits')
  t.equal(requests, before)
})

t.test('a dispatcher of the caller\'s own: undici\'s MockAgent answers, the network is never asked', async t => {
  const mock = new MockAgent()
  mock.disableNetConnect()
  t.teardown(() => mock.close())
  mock.get('http://session-validator.test').intercept({ path: '/sessions/validate', method: 'POST' })
    .reply(200, { valid: true, session: { id: 's1' }, user: { id: 'u1' } })
  const mocked = createSessionClient({ url: 'http://session-validator.test', dispatcher: mock })
  t.teardown(() => mocked.close())
  t.match(await mocked.validate('some-token'), { outcome: 'valid', session: { id: 's1' }, user: { id: 'u1' } })
  t.match(await mocked.validate('some-token'), { outcome: 'unavailable', reason: 'connection' }, 'nothing intercepts the second call')
  mock.assertNoPendingInterceptors()
})
