import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, statSync } from 'node:fs'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { loadConfig } from '../../src/config.js'
import { ConfigError } from '../../src/errors.js'
import { freshDatabase } from '../helpers/postgres.js'
import { Redis } from 'ioredis'
import { freshPrefix, inspector, ownRedis } from '../helpers/redis.js'
import { faultProxy } from '../helpers/fault-proxy.js'
import { ROOT, startServer } from '../helpers/process.js'
import { testApp } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep, waitFor } from '../helpers/ports.js'

// Secrets never leave the process: not in an answer, a log line or an error
// message, whatever a dependency or the environment does.

const db = await freshDatabase(t)
const userId = await createUser(db.sql)
const secret = (label: string) => `${label}-${randomBytes(12).toString('hex')}`
const apiKey = secret('apikey')

// An answer as a client sees it: status line, headers and body.
const seen = (res: LightMyRequestResponse) => `${res.statusCode} ${JSON.stringify(res.headers)} ${res.payload}`

function noLeak (t: Test, where: string, text: string, secrets: Record<string, string>): void {
  for (const [what, value] of Object.entries(secrets)) t.notOk(text.includes(value), `${where}: no ${what}`)
}

function withKey (app: FastifyInstance, url: string, payload?: object) {
  return app.inject({ method: 'POST', url, headers: { 'x-api-key': apiKey }, ...(payload === undefined ? {} : { payload }) })
}

// ownRedis waits for an unauthenticated PING, so the password comes after.
async function passwordRedis (t: Test, password: string) {
  const redis = await ownRedis(t)
  const admin = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 })
  await admin.connect()
  await admin.config('SET', 'requirepass', password)
  admin.disconnect()
  return redis
}

// Every route a client can reach, with a real and an unknown token.
async function exercise (app: FastifyInstance, token: string, sessionId: string): Promise<LightMyRequestResponse[]> {
  return [
    await withKey(app, '/sessions/validate', { token }),
    await withKey(app, '/sessions/validate', { token: `${token}-unknown` }),
    await app.inject({ method: 'POST', url: '/sessions/validate', headers: { authorization: `Bearer ${token}`, 'x-api-key': apiKey } }),
    await app.inject({ method: 'POST', url: '/sessions/validate', payload: { token } }),
    await withKey(app, '/sessions/validate', { token: `${token}\u0000` }),
    await withKey(app, '/sessions/revoke', { sessionId }),
    await withKey(app, `/users/${userId}/sessions/revoke`),
    await app.inject({ method: 'GET', url: '/healthz' }),
    await app.inject({ method: 'GET', url: '/readyz' }),
    await app.inject({ method: 'GET', url: '/healthz/redis' }),
    await app.inject({ method: 'GET', url: '/metrics' })
  ]
}

t.test('Redis refusing the password', async t => {
  const goodPassword = secret('redispw-good')
  const wrongPassword = secret('redispw-wrong')
  const redis = await passwordRedis(t, goodPassword)
  const redisUrl = `redis://:${wrongPassword}@127.0.0.1:${redis.port}`
  const { app, logs } = await testApp(t, { databaseUrl: db.url, redisUrl, prefix: freshPrefix(), env: { SERVICE_API_KEYS: apiKey }, waitForCache: false })
  await waitFor('the epoch', () => app.sessions.epoch !== undefined)
  await sleep(300) // a few refused reconnects
  const s = await createSession(db.sql, userId)

  const valid = await withKey(app, '/sessions/validate', { token: s.token })
  t.equal(valid.statusCode, 200, 'answered from Postgres')
  t.equal(valid.headers['x-session-cache'], 'miss', 'memory was asked; Redis could not be')
  t.equal(valid.headers['x-session-cache-tier'], undefined)
  const health = await app.inject({ method: 'GET', url: '/healthz/redis' })
  t.equal(health.statusCode, 503)
  t.equal(health.json().status, 'unhealthy')
  t.match(logs.join(''), /"msg":"redis connection error"/, 'the refusal is logged (by its code)')

  const answers = await exercise(app, s.token, s.id)
  t.ok(answers.every(a => a.statusCode < 500 || a.statusCode === 503), 'no 500')
  const secrets = { 'wrong password': wrongPassword, 'right password': goodPassword, URL: redisUrl, 'raw token': s.token, 'token digest': s.digest, 'API key': apiKey }
  noLeak(t, 'answers', [valid, health, ...answers].map(seen).join('\n'), secrets)
  noLeak(t, 'logs', logs.join(''), secrets)
  t.notOk(logs.join('').includes(`:${redis.port}`), 'logs: no host:port')
})

t.test('Postgres refusing the login', async t => {
  const role = `sv_no_such_role_${randomBytes(4).toString('hex')}`
  const database = `sv_no_such_db_${randomBytes(4).toString('hex')}`
  const password = secret('pgpw')
  const databaseUrl = `postgres://${role}:${password}@127.0.0.1:5432/${database}`
  const { app, logs } = await testApp(t, {
    databaseUrl,
    env: { SERVICE_API_KEYS: apiKey, DATABASE_CONNECT_TIMEOUT_SECONDS: '1' },
    waitForCache: false
  })
  await sleep(500) // the listener has tried and been refused by now

  const token = secret('token')
  const answers = await exercise(app, token, '00000000-0000-4000-8000-000000000000')
  const validate = answers[0]!
  t.equal(validate.statusCode, 503, 'the answer cannot be known: 503, never 401')
  t.equal(validate.headers['retry-after'], '1')
  t.match(validate.json(), { statusCode: 503, code: 'SV_DEPENDENCY_UNAVAILABLE', message: 'The answer cannot be known right now; retry shortly' })
  t.equal(answers[8]!.statusCode, 503, '/readyz is 503')
  t.equal(answers[7]!.statusCode, 200, '/healthz is 200')
  t.match(logs.join(''), /"code":"28000"|"code":"3D000"/, 'the refusal is logged by its SQLSTATE')

  const secrets = { password, URL: databaseUrl, 'role name': role, 'database name': database, 'raw token': token, 'API key': apiKey }
  noLeak(t, 'answers', answers.map(seen).join('\n'), secrets)
  noLeak(t, 'logs', logs.join(''), secrets)
})

t.test('malformed URLs in the environment: the error names the variable, never the value', async t => {
  const password = secret('hunter2')
  const cases: Array<[string, string]> = [
    ['DATABASE_URL', `postgres://app:${password}@db.internal:notaport/railway`],
    ['DATABASE_URL', `postgres://app:${password}@[::1/railway`],
    ['DATABASE_URL', `mysql://app:${password}@db.internal:3306/railway`],
    ['DATABASE_URL', `app:${password}@db.internal:5432/railway`],
    ['DATABASE_URL', `postgres://app:${password}@:5432/railway`],
    ['DATABASE_URL', `postgres://app:${password}@db.internal:99999/railway`],
    ['REDIS_URL', `redis://default:${password}@redis.internal:99999`],
    ['REDIS_URL', `redis://:${password}@[::1`],
    ['REDIS_URL', `http://default:${password}@redis.internal:6379`],
    ['REDIS_URL', `rediss//default:${password}@redis.internal:6379`],
    ['REDIS_URL', `redis://default:${password}@redis internal:6379`]
  ]
  for (const [name, value] of cases) {
    let error: unknown
    try {
      loadConfig({ [name]: value })
    } catch (err) {
      error = err
    }
    t.ok(error instanceof ConfigError, `${name}=<${value.split(':')[0]}...> is refused`)
    const text = `${String(error)} ${(error as Error).stack} ${JSON.stringify(error)}`
    t.ok((error as Error).message.startsWith(`${name}: `), 'the message names the variable')
    noLeak(t, name, text, { password, URL: value, host: value.includes('db.internal') ? 'db.internal' : 'redis.internal' })
  }
})

t.test('the built server refuses a bad URL with one line on stderr, without the password', async t => {
  // `npm test` builds first; run alone, this file builds when dist/ is behind src/
  if (distIsStale()) spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore', env: process.env })
  t.ok(existsSync(`${ROOT}dist/server.js`), 'dist/server.js is built')
  const password = secret('hunter2')
  for (const [name, value] of [['REDIS_URL', `redis://default:${password}@[::1`], ['DATABASE_URL', `postgres://app:${password}@db.internal:notaport/x`]] as const) {
    const server = startServer(t, { DATABASE_URL: db.url, [name]: value, PORT: '0', LOG_LEVEL: 'info' })
    t.equal(await server.exited, 1, `${name}: exits 1`)
    t.equal(server.stdout(), '', `${name}: nothing on stdout`)
    t.match(server.stderr(), new RegExp(`^invalid configuration: ${name}: [^\\n]+\\n$`), `${name}: exactly one line, naming the variable: ${JSON.stringify(server.stderr())}`)
    noLeak(t, name, server.stdout() + server.stderr(), { password, URL: value })
  }
})

function distIsStale (): boolean {
  const built = `${ROOT}dist/server.js`
  if (!existsSync(built)) return true
  const builtAt = statSync(built).mtimeMs
  return readdirSync(`${ROOT}src`, { recursive: true, encoding: 'utf8' })
    .some(file => file.endsWith('.ts') && statSync(`${ROOT}src/${file}`).mtimeMs > builtAt)
}

t.test('driver errors on the hot path: Postgres cut, Redis killed, a key of the wrong type', async t => {
  const redisPassword = secret('redispw')
  const pgPassword = secret('pgpw') // trust auth ignores it; it must not show anyway
  const redis = await passwordRedis(t, redisPassword)
  const redisUrl = `redis://:${redisPassword}@127.0.0.1:${redis.port}`
  const prefix = freshPrefix()
  const inspect = inspector(t, redisUrl, prefix)
  const proxy = await faultProxy(t, 5432)
  const databaseUrl = `postgres://postgres:${pgPassword}@127.0.0.1:${proxy.port}/${db.name}`
  const { app, logs } = await testApp(t, {
    databaseUrl,
    redisUrl,
    prefix,
    env: { SERVICE_API_KEYS: apiKey, DATABASE_CONNECT_TIMEOUT_SECONDS: '1', DATABASE_QUERY_TIMEOUT_MS: '500', REDIS_TIMEOUT_MS: '100' }
  })
  const cached = await createSession(db.sql, userId)
  const odd = await createSession(db.sql, userId)
  const uncached = await createSession(db.sql, userId)
  t.equal((await withKey(app, '/sessions/validate', { token: cached.token })).statusCode, 200)

  // a hand-made key of the wrong type where the entry would be: HMGET fails
  await inspect.set(`${prefix}{${odd.digest}}`, 'not a hash', 'PX', 60_000)
  const wrongType = await withKey(app, '/sessions/validate', { token: odd.token })
  t.equal(wrongType.statusCode, 200, 'a WRONGTYPE from Redis falls back to Postgres')

  proxy.cut()
  const pgDown = await exercise(app, uncached.token, uncached.id)
  t.equal(pgDown[0]!.statusCode, 503, 'Postgres cut: a miss is 503')
  await redis.kill()
  const bothDown = await exercise(app, cached.token, cached.id)
  t.equal(bothDown[0]!.statusCode, 503, 'and with Redis gone too')
  t.ok([...pgDown, ...bothDown].every(a => a.statusCode !== 500), 'never a bare 500')
  proxy.restore()

  const secrets = {
    'Redis password': redisPassword,
    'Postgres password': pgPassword,
    'Redis URL': redisUrl,
    'Postgres URL': databaseUrl,
    'API key': apiKey,
    'Postgres host:port': `127.0.0.1:${proxy.port}`,
    'Redis host:port': `127.0.0.1:${redis.port}`
  }
  for (const s of [cached, odd, uncached]) Object.assign(secrets, { [`token ${s.id}`]: s.token, [`digest ${s.id}`]: s.digest })
  noLeak(t, 'answers', [wrongType, ...pgDown, ...bothDown].map(seen).join('\n'), secrets)
  noLeak(t, 'logs', logs.join(''), secrets)
  const errors = [...pgDown, ...bothDown].filter(r => r.statusCode === 503 && r.payload.startsWith('{"statusCode"'))
  t.ok(errors.length >= 4, 'the API routes answered with errors')
  for (const res of errors) {
    t.notMatch(res.payload, /ECONN|CONNECT_TIMEOUT|CONNECTION_|postgres|ioredis|WRONGTYPE/i, 'a 503 error says nothing of the driver')
  }
})
