import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import t from 'tap'
import { createSessionClient, type RetryInfo } from '../src/index.js'

// What the client does with answers the service never gives but something
// in front of it might (a proxy's error page, a 502): never a logout. A plain
// HTTP server plays that something; the service's own answers are pinned
// against the real service in the other files.
type Handler = (req: IncomingMessage, res: ServerResponse) => void
let handler: Handler = (_req, res) => { res.end() }
let lastBody = ''
const server = createServer((req, res) => {
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => { body += chunk })
  req.on('end', () => { lastBody = body; handler(req, res) })
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
  const result = await client.validate('some-token')
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
  t.match(await client.revoke({ token: 'abc' }).catch((e: unknown) => e), { reason: 'bad_request', message: /bad request/ })
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
