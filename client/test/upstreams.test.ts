import { createServer as createHttpServer } from 'node:http'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { Agent, ProxyAgent } from 'undici'
import { createSessionClient, SessionValidatorError, type OutcomeInfo, type RetryInfo, type SessionClientOptions } from '../src/index.js'
import { createSession, createUser } from '../../test/helpers/fixtures.js'
import { startNginx } from '../../test/helpers/nginx.js'
import { freePort } from '../../test/helpers/ports.js'
import { closedPortUrl, startService } from './helpers/service.js'
import { selfSigned } from './helpers/tls.js'

// What stands between a caller and the service when it is misconfigured: a
// real nginx (its own 400, 413 and 502 pages), TLS with certificates the
// client does or does not trust, a name that does not resolve, a port nobody
// listens on. None of it is a logout, and the cause is kept.
const service = await startService(t)
const userId = await createUser(service.db.sql)
const live = await createSession(service.db.sql, userId)
const servicePort = new URL(service.url).port

const trusted = selfSigned(t, ['DNS:localhost', 'IP:127.0.0.1'])
const otherName = selfSigned(t, ['DNS:other.example'])
const [smallBodies, badGateway, misnamed, nobody] = [await freePort(), await freePort(), await freePort(), await freePort()]
const nginx = await startNginx(t, `
server {
  listen 80 ssl;
  ssl_certificate ${trusted.certFile};
  ssl_certificate_key ${trusted.keyFile};
  location / { proxy_pass http://127.0.0.1:${servicePort}; }
}
server {
  listen 127.0.0.1:${misnamed} ssl;
  ssl_certificate ${otherName.certFile};
  ssl_certificate_key ${otherName.keyFile};
  location / { proxy_pass http://127.0.0.1:${servicePort}; }
}
server {
  listen 127.0.0.1:${smallBodies};
  client_max_body_size 10;
  location / { proxy_pass http://127.0.0.1:${servicePort}; }
}
server {
  listen 127.0.0.1:${badGateway};
  location / { proxy_pass http://127.0.0.1:${nobody}; }
}
`)
const https = `https://localhost:${nginx.port}`

interface Seen { client: ReturnType<typeof createSessionClient>, retries: RetryInfo[], outcomes: OutcomeInfo[] }

function clientFor (options: SessionClientOptions): Seen {
  const retries: RetryInfo[] = []
  const outcomes: OutcomeInfo[] = []
  const client = createSessionClient({ timeoutMs: 3000, onRetry: info => retries.push(info), onOutcome: info => outcomes.push(info), ...options })
  t.teardown(() => client.close())
  return { client, retries, outcomes }
}

t.test('plain HTTP to nginx\'s HTTPS port: its 400 page is unavailable, never invalid, and not retried', async t => {
  const { client, retries } = clientFor({ url: `http://127.0.0.1:${nginx.port}` })
  const plain = await fetch(`http://127.0.0.1:${nginx.port}/sessions/validate`, { method: 'POST', body: '{}' })
  t.match(await plain.text(), /The plain HTTP request was sent to HTTPS port/, 'nginx\'s own page, as a caller would get it')
  t.same(await client.validate(live.token), { outcome: 'unavailable', reason: 'unexpected_response', status: 400 })
  t.same(retries, [])
  const err = await client.revoke({ token: live.token }).catch((e: unknown) => e)
  t.match(err, { name: 'SessionValidatorError', reason: 'unexpected_response', status: 400 }, 'a revoke hears the same, not `bad_request`')
})

t.test('nginx\'s 413 page (client_max_body_size) is unavailable, never malformed', async t => {
  const { client, retries } = clientFor({ url: `http://127.0.0.1:${smallBodies}` })
  t.same(await client.validate(live.token), { outcome: 'unavailable', reason: 'unexpected_response', status: 413 })
  t.same(retries, [])
})

t.test('nginx\'s 502 page (its upstream down) is service_unavailable, retried within the deadline', async t => {
  const { client, retries } = clientFor({ url: `http://127.0.0.1:${badGateway}` })
  t.same(await client.validate(live.token), { outcome: 'unavailable', reason: 'service_unavailable', status: 502 })
  t.same(retries.map(r => [r.reason, r.status]), [['service_unavailable', 502], ['service_unavailable', 502]])
})

t.test('HTTPS with a dispatcher of the caller\'s own that trusts a private CA: valid; close() leaves it open', async t => {
  const agent = new Agent({ connect: { ca: trusted.cert } })
  t.teardown(() => agent.close())
  const { client, outcomes } = clientFor({ url: https, dispatcher: agent })
  const result = await client.validate(live.token)
  t.equal(result.outcome, 'valid')
  t.equal(result.outcome === 'valid' && result.user.id, userId)
  t.match(outcomes, [{ call: 'validate', outcome: 'valid', attempts: 1 }])
  await client.close()
  const again = createSessionClient({ url: https, dispatcher: agent })
  t.equal((await again.validate(live.token)).outcome, 'valid', 'the agent still works after a client on it closed')
  await again.close()
  t.throws(() => createSessionClient({ url: https, dispatcher: agent, connections: 4 }), /connections/, 'connections sizes only the client\'s own pool')
})

t.test('through a proxy (the caller\'s ProxyAgent, CONNECT), with the private CA', async t => {
  let tunnels = 0
  const sockets = new Set<Socket>()
  const proxy = createHttpServer()
  proxy.on('connect', (req, down: Socket) => {
    tunnels++
    const [host, port] = (req.url ?? '').split(':')
    const up = connect(Number(port), host === 'localhost' ? '127.0.0.1' : host)
    sockets.add(down).add(up)
    up.once('connect', () => { down.write('HTTP/1.1 200 Connection Established\r\n\r\n'); up.pipe(down).pipe(up) })
    up.on('error', () => down.destroy())
    down.on('error', () => up.destroy())
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); proxy.close(() => resolve()) }))
  const agent = new ProxyAgent({ uri: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, requestTls: { ca: trusted.cert } })
  t.teardown(() => agent.close())
  const { client } = clientFor({ url: https, dispatcher: agent })
  t.equal((await client.validate(live.token)).outcome, 'valid')
  t.equal(tunnels, 1, 'through the proxy')
})

t.test('a certificate the client does not trust: tls, with its cause, at once', async t => {
  const { client, retries, outcomes } = clientFor({ url: https })
  t.same(await client.validate(live.token), { outcome: 'unavailable', reason: 'tls', cause: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
  t.same(retries, [], 'a certificate does not heal in 50 ms: not retried')
  t.match(outcomes, [{ call: 'validate', outcome: 'unavailable', reason: 'tls', cause: 'DEPTH_ZERO_SELF_SIGNED_CERT', attempts: 1 }])
})

t.test('a certificate for another name: tls, ERR_TLS_CERT_ALTNAME_INVALID', async t => {
  const agent = new Agent({ connect: { ca: otherName.cert } })
  t.teardown(() => agent.close())
  const { client, retries } = clientFor({ url: `https://localhost:${misnamed}`, dispatcher: agent })
  t.same(await client.validate(live.token), { outcome: 'unavailable', reason: 'tls', cause: 'ERR_TLS_CERT_ALTNAME_INVALID' })
  t.same(retries, [])
})

t.test('TLS spoken to a plain HTTP port: tls, ERR_SSL_WRONG_VERSION_NUMBER', async t => {
  const { client, retries } = clientFor({ url: `https://127.0.0.1:${smallBodies}` })
  t.same(await client.validate(live.token), { outcome: 'unavailable', reason: 'tls', cause: 'ERR_SSL_WRONG_VERSION_NUMBER' })
  t.same(retries, [])
})

t.test('a host name that does not resolve: dns, with its cause, on the result, the hook and the error', async t => {
  const { client, retries, outcomes } = clientFor({ url: 'http://nonexistent.invalid:3000' })
  const result = await client.validate(live.token)
  t.match(result, { outcome: 'unavailable', reason: 'dns', cause: /^(ENOTFOUND|EAI_AGAIN)$/ })
  // ENOTFOUND is a wrong URL and is not retried; EAI_AGAIN (no resolver answered) may heal
  if (result.outcome === 'unavailable' && result.cause === 'ENOTFOUND') t.same(retries, [], 'not retried')
  t.match(outcomes, [{ outcome: 'unavailable', reason: 'dns', cause: result.outcome === 'unavailable' ? result.cause : '' }])
  const err = await client.revokeAll(userId).catch((e: unknown) => e)
  t.type(err, SessionValidatorError)
  t.match(err, { reason: 'dns', cause: /^(ENOTFOUND|EAI_AGAIN)$/, message: /could not revoke: dns \((ENOTFOUND|EAI_AGAIN)\)/ })
  t.match(outcomes[1], { call: 'revokeAll', outcome: 'failed', reason: 'dns' })
})

t.test('a refused connection: connection, ECONNREFUSED, retried (it may be a restart)', async t => {
  const { client, retries } = clientFor({ url: await closedPortUrl() })
  t.same(await client.validate(live.token), { outcome: 'unavailable', reason: 'connection', cause: 'ECONNREFUSED' })
  t.same(retries.map(r => [r.reason, r.cause, r.waitMs]), [['connection', 'ECONNREFUSED', 50], ['connection', 'ECONNREFUSED', 100]])
})
