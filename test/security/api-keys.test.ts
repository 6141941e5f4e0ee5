import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { sleep } from '../helpers/ports.js'
import { SYNC_EVERY_MS } from '../../src/limits/shared-counter.js'
import Fastify, { type InjectOptions } from 'fastify'
import { app as sessionValidator, serverOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, ownRedis } from '../helpers/redis.js'
import { testApp } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'

const db = await freshDatabase(t)
const redis = await ownRedis(t)
const prefix = freshPrefix()
const inspect = inspector(t, redis.url, prefix)
const keys = [`studio-${randomBytes(16).toString('hex')}`, `worker-${randomBytes(16).toString('hex')}`]
const metricsToken = `scrape-${randomBytes(16).toString('hex')}`
const env = { SERVICE_API_KEYS: keys.join(','), METRICS_TOKEN: metricsToken }
const { app, logs } = await testApp(t, { databaseUrl: db.url, redisUrl: redis.url, prefix, env })
const userId = await createUser(db.sql)

// Not hard-coded: a route someone adds later is covered (or exempted) here too.
const EXEMPT = new Set(['/healthz', '/readyz', '/healthz/redis', '/metrics'])
const routes = await routeTable()

async function routeTable (): Promise<Array<{ method: string, url: string }>> {
  const config = loadConfig({ DATABASE_URL: db.url, SESSION_CACHE_PREFIX: prefix, LOG_LEVEL: 'silent', ...env })
  const fastify = Fastify({ ...serverOptions(config), logger: false })
  const found: Array<{ method: string, url: string }> = []
  fastify.addHook('onRoute', route => {
    for (const method of [route.method].flat()) found.push({ method, url: route.url })
  })
  await fastify.register(sessionValidator, { config, databaseUrl: db.url })
  await fastify.ready()
  await fastify.close()
  return found
}

const concrete = (url: string) => url.replace(':userId', randomUUID())
const bearer = { authorization: `Bearer ${metricsToken}` }

async function scrape (): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers: bearer })
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}`)
  return res.payload
}

// The coherence protocol's own Redis calls run in the background, whatever
// the requests: the watermark claim (a script, about once a second).
const BACKGROUND = /command="(claim|watermark|warm_claim)"/

// Every sample of a histogram's _count, summed over its labels, background calls left out.
function total (exposition: string, name: string): number {
  let sum = 0
  for (const line of exposition.split('\n')) {
    if (BACKGROUND.test(line)) continue
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

// What Redis ran, as MONITOR sees it, from start() until the marker stop()
// sends, but for what runs whatever the requests: the coherence protocol's
// claim and watermark (keys under coherence:), a connection's handshake
// (a client that reconnects sends INFO and CLIENT SETINFO) and the
// heartbeat's PING, one a second.
const BACKGROUND_COMMANDS = new Set(['info', 'client', 'select', 'auth', 'hello', 'ping'])
const background = (args: string[]) => BACKGROUND_COMMANDS.has(args[0]!.toLowerCase()) ||
  args.some(a => a.startsWith(`${prefix}coherence:`))

async function watchRedis (): Promise<{ stop(): Promise<string[][]> }> {
  const marker = `end-${randomUUID()}`
  const monitor = await inspect.monitor()
  const seen: string[][] = []
  let ended!: () => void
  const end = new Promise<void>(resolve => { ended = resolve })
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) ended()
    else if (!background(args)) seen.push(args)
  })
  return {
    async stop () {
      await inspect.echo(marker)
      await end
      monitor.disconnect()
      return seen
    }
  }
}

t.test('the route table was found', async t => {
  const urls = new Set(routes.map(r => r.url))
  for (const url of ['/sessions/validate', '/sessions/revoke', '/users/:userId/sessions/revoke', ...EXEMPT]) t.ok(urls.has(url), url)
})

t.test('every route but health and metrics needs a matching x-api-key, else 403', async t => {
  const wrong: Array<[string, Record<string, string | string[]>]> = [
    ['no key', {}],
    ['an empty key', { 'x-api-key': '' }],
    ['an unknown key', { 'x-api-key': `studio-${randomBytes(16).toString('hex')}` }],
    ['the last character changed', { 'x-api-key': keys[0]!.slice(0, -1) + (keys[0]!.endsWith('a') ? 'b' : 'a') }],
    ['a prefix of a key', { 'x-api-key': keys[0]!.slice(0, -1) }],
    ['a key with a suffix', { 'x-api-key': `${keys[0]}x` }],
    ['another case', { 'x-api-key': keys[0]!.toUpperCase() }],
    ['padded with spaces', { 'x-api-key': ` ${keys[0]} ` }],
    ['both keys in one header', { 'x-api-key': keys.join(',') }],
    ['the key sent twice', { 'x-api-key': [keys[0]!, keys[0]!] }],
    ['the key as a bearer token', { authorization: `Bearer ${keys[0]}` }],
    ['the metrics token', { 'x-api-key': metricsToken }]
  ]
  const guarded = routes.filter(r => !EXEMPT.has(r.url))
  t.ok(guarded.some(r => r.url === '/docs/json'), 'the OpenAPI document is guarded too')
  for (const { method, url } of guarded) {
    for (const [what, headers] of wrong) {
      const res = await app.inject({ method: method as 'POST', url: concrete(url), headers })
      t.equal(res.statusCode, 403, `${method} ${url}, ${what}: 403`)
      if (method !== 'HEAD') t.match(res.json(), { statusCode: 403, error: 'Forbidden', message: String }, 'Fastify\'s error shape')
      t.notOk(res.headers['x-ratelimit-limit'], 'a refused caller is not counted by the limiter')
    }
    for (const key of keys) {
      const res = await app.inject({ method: method as 'POST', url: concrete(url), headers: { 'x-api-key': key } })
      t.not(res.statusCode, 403, `${method} ${url} with a configured key is let through (${res.statusCode})`)
    }
  }
  for (const { method, url } of routes.filter(r => EXEMPT.has(r.url))) {
    const res = await app.inject({ method: method as 'GET', url })
    t.not(res.statusCode, 403, `${method} ${url} needs no x-api-key`)
  }
})

t.test('a 403 costs no Redis and no Postgres call', async t => {
  const s = await createSession(db.sql, userId)
  const forbidden: InjectOptions[] = [
    { method: 'POST', url: '/sessions/validate', payload: { token: s.token } },
    { method: 'POST', url: '/sessions/validate', headers: { authorization: `Bearer ${s.token}`, 'x-api-key': 'nope-nope-nope-nope' } },
    { method: 'POST', url: '/sessions/revoke', payload: { token: s.token } },
    { method: 'POST', url: '/sessions/revoke', payload: { sessionId: s.id } },
    { method: 'POST', url: `/users/${userId}/sessions/revoke` }
  ]
  // the limiter refreshes a caller's counts in the background for a second
  // after its last request: let that end first
  await sleep(1000 + SYNC_EVERY_MS * 3)
  const before = await scrape()
  const refused = await watchRedis()
  for (let i = 0; i < 100; i++) {
    for (const request of forbidden) t.equal((await app.inject(request)).statusCode, 403)
  }
  t.same(await refused.stop(), [], 'Redis ran no command for 500 refused requests')
  const after = await scrape()
  for (const name of ['db_query_duration_seconds_count', 'redis_command_duration_seconds_count']) {
    t.equal(total(after, name), total(before, name), `${name} did not move over 500 refused requests`)
  }
  t.equal((await db.sql`SELECT 1 FROM platform.user_sessions WHERE id = ${s.id}`).length, 1, 'no revoke went through')
  const allowed = await watchRedis()
  const ok = await app.inject({ method: 'POST', url: '/sessions/validate', payload: { token: s.token }, headers: { 'x-api-key': keys[1]! } })
  t.equal(ok.statusCode, 200, 'the session is still valid for a caller with a key')
  t.ok((await allowed.stop()).length > 0, 'the measure sees Redis work when there is some (the cache)')
})

t.test('METRICS_TOKEN protects /metrics with a bearer token', async t => {
  const refused: Array<[string, Record<string, string>]> = [
    ['no credentials', {}],
    ['a wrong token', { authorization: `Bearer ${metricsToken.slice(0, -1)}x` }],
    ['the token without the scheme', { authorization: metricsToken }],
    ['another scheme', { authorization: `Basic ${metricsToken}` }],
    ['a service API key', { 'x-api-key': keys[0]! }],
    ['a service API key as bearer', { authorization: `Bearer ${keys[0]}` }]
  ]
  for (const [what, headers] of refused) {
    const res = await app.inject({ method: 'GET', url: '/metrics', headers })
    t.equal(res.statusCode, 401, `${what}: 401`)
    t.match(res.json(), { statusCode: 401, error: 'Unauthorized', message: String })
    t.notOk(res.payload.includes('session_validations_total'), `${what}: no metric is shown`)
    t.notOk(res.payload.includes(metricsToken), `${what}: the token is not echoed`)
  }
  const ok = await app.inject({ method: 'GET', url: '/metrics', headers: bearer })
  t.equal(ok.statusCode, 200)
  t.match(ok.headers['content-type'], /^text\/plain/)
  t.match(ok.payload, /session_validations_total/)
})

t.test('health routes answer without any credential', async t => {
  for (const url of ['/healthz', '/readyz', '/healthz/redis']) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 200, url)
  }
})

t.test('neither the API keys nor the metrics token ever shows in a log line', async t => {
  const all = logs.join('')
  t.ok(all.length > 0, 'the app did log')
  for (const secret of [...keys, metricsToken]) t.notOk(all.includes(secret))
})
