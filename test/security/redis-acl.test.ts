import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, keysUnder, ownRedis } from '../helpers/redis.js'
import { testApp } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { sleep, waitFor } from '../helpers/ports.js'
import { SYNC_EVERY_MS } from '../../src/limits/shared-counter.js'
import { aclRules, aclSetUserLine, REDIS_COMMANDS } from '../../src/redis/acl.js'
import { createRedisClient } from '../../src/redis/redis-client.js'
import { loadConfig } from '../../src/config.js'

// The service runs as a Redis user that may run only the commands it uses
// (src/redis/acl.ts says which, and why), on only its own keys. README quotes
// the line aclSetUserLine builds; this file runs that very line.
const commands = REDIS_COMMANDS.map(c => c.name)

const db = await freshDatabase(t)
const userId = await createUser(db.sql)
const redis = await ownRedis(t)
const admin = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 1 })
admin.on('error', () => {})
t.teardown(() => admin.disconnect())
const version = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1]

t.test(`this redis-server (${version}) knows every command of the line`, async t => {
  const known = await admin.call('COMMAND', 'INFO', ...commands) as unknown[]
  t.same(commands.filter((_c, i) => known[i] === null), [], 'none unknown: the line is accepted as it stands')
})

t.test("docs/security.md's restricted-user line is the one src/redis/acl.ts builds", async t => {
  const page = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8')
  t.ok(page.includes(aclSetUserLine('session:')), aclSetUserLine('session:'))
})

interface AclLogEntry { reason: string, object: string, username: string }

async function aclLog (): Promise<AclLogEntry[]> {
  const raw = await admin.call('ACL', 'LOG') as unknown[]
  // RESP3 answers maps, RESP2 flat arrays: read both
  return raw.map(entry => {
    const fields = entry instanceof Map ? Object.fromEntries(entry) : Object.fromEntries(Array.from({ length: (entry as unknown[]).length / 2 }, (_, i) => [(entry as unknown[])[2 * i], (entry as unknown[])[2 * i + 1]]))
    return fields as unknown as AclLogEntry
  })
}

async function createRestrictedUser (name: string, prefix: string, allowed = commands): Promise<string> {
  const password = randomBytes(16).toString('hex')
  await admin.call('ACL', 'SETUSER', name, 'reset', ...aclRules(prefix, password, allowed))
  return `redis://${name}:${password}@127.0.0.1:${redis.port}`
}

// The documented line itself, word for word but for the password and prefix.
async function createUserFromTheLine (name: string, prefix: string): Promise<string> {
  const password = randomBytes(16).toString('hex')
  const [command, ...args] = aclSetUserLine(prefix, { user: name, password }).split(' ')
  await admin.call(command!, ...args)
  return `redis://${name}:${password}@127.0.0.1:${redis.port}`
}

// Every path that touches Redis: miss and fill, hit, the three revocations,
// the health report and the rate limiter. What happened is returned, not
// asserted, so that a run with a command missing can be judged by the ACL log.
async function everyRedisPath (t: Test, url: string, prefix: string) {
  // memory off: every validation below must take its Redis path; the request
  // limit on (it is off by default), so that the limiter's commands are used too
  const { app } = await testApp(t, { databaseUrl: db.url, redisUrl: url, prefix, waitForCache: false, env: { LOCAL_CACHE_MAX_ENTRIES: '0', RATE_LIMIT_MAX: '1000' } })
  await waitFor('the epoch', () => app.sessions.epoch !== undefined)
  await waitFor('redis', () => app.cacheClient?.client.status === 'ready', 2000).catch(() => {})
  await waitFor('the shared cache', () => app.coherence.sharedReadable(), 2000).catch(() => {})
  const sessions = [await createSession(db.sql, userId), await createSession(db.sql, userId), await createSession(db.sql, userId)]
  const validate = async (token: string) => {
    const res = await app.inject({ method: 'POST', url: '/sessions/validate', payload: { token } })
    return `${res.statusCode} ${res.headers['x-session-cache']}`
  }
  const first = []
  const second = []
  for (const s of sessions) first.push(await validate(s.token))
  for (const s of sessions) second.push(await validate(s.token))
  const unknown = await validate('never-issued')
  const revoked = [
    (await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { token: sessions[0]!.token } })).json(),
    (await app.inject({ method: 'POST', url: '/sessions/revoke', payload: { sessionId: sessions[1]!.id } })).json(),
    (await app.inject({ method: 'POST', url: `/users/${userId}/sessions/revoke` })).json()
  ]
  const after = []
  for (const s of sessions) after.push(await validate(s.token))
  const health = await app.inject({ method: 'GET', url: '/healthz/redis' })
  const circuit = app.cacheClient?.circuit
  await sleep(SYNC_EVERY_MS * 3) // the limiter adds its counts to Redis in the background
  await app.close()
  return { first, second, unknown, revoked, after, health: { statusCode: health.statusCode, body: health.json() }, circuit, keys: await keysUnder(admin, prefix) }
}

t.test('the service runs as a user created by that line: only its commands and its key prefix', async t => {
  const prefix = freshPrefix()
  const url = await createUserFromTheLine('session-validator', prefix)
  await admin.call('ACL', 'LOG', 'RESET')
  const seen = await everyRedisPath(t, url, prefix)
  t.same(seen.first, ['200 miss', '200 miss', '200 miss'], 'misses read Postgres...')
  t.same(seen.second, ['200 hit', '200 hit', '200 hit'], '...and filled Redis')
  t.equal(seen.unknown, '401 miss')
  t.same(seen.revoked, [{ revoked: 1 }, { revoked: 1 }, { revoked: 1 }], 'by token, by session id, all of a user\'s')
  t.same(seen.after, ['401 miss', '401 miss', '401 miss'])
  t.equal(seen.health.statusCode, 200)
  t.equal(seen.health.body.status, 'healthy', JSON.stringify(seen.health.body.errors))
  t.equal(seen.circuit, 'closed', 'no Redis call failed')
  t.ok(seen.keys.some(k => k.startsWith(`${prefix}rl:req:`)), 'the limiter counted in Redis')
  t.ok(seen.keys.some(k => k.endsWith(':revoked')), 'revocations left their tombstones')
  t.same(await aclLog(), [], 'Redis denied nothing')
})

t.test('that user can do nothing else', async t => {
  const prefix = freshPrefix()
  const url = await createRestrictedUser('session-validator-probe', prefix)
  const client = new Redis(url, { maxRetriesPerRequest: 0 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await waitFor('the restricted user to log in', () => client.status === 'ready')
  t.equal(await client.set(`${prefix}mine`, '1', 'PX', 1000), 'OK', 'its own keys')
  const refused: Array<[string, () => Promise<unknown>]> = [
    ['a key outside the prefix', () => client.get('other:key')],
    ['KEYS', () => client.keys('*')],
    ['SCAN', () => client.scan('0')],
    ['FLUSHALL', () => client.flushall()],
    ['CONFIG GET', () => client.config('GET', 'requirepass')],
    ['a script touching a key outside the prefix', () => client.eval("return redis.call('GET', KEYS[1])", 1, 'other:key')],
    ['a script reaching outside the prefix without declaring it', () => client.eval("return redis.call('GET', 'other:key')", 0)],
    ['SUBSCRIBE', () => client.call('PUBLISH', 'channel', 'x')],
    ['ACL', () => client.call('ACL', 'LIST')],
    ['CLIENT LIST', () => client.call('CLIENT', 'LIST')]
  ]
  for (const [what, attempt] of refused) {
    await t.rejects(attempt(), /NOPERM|no permissions|can't access/i, `${what} is refused`)
  }
})

t.test('every command in the line is needed', async t => {
  // Dropping any one of them makes Redis deny it somewhere on those paths.
  for (const command of commands) {
    const prefix = freshPrefix()
    const name = `sv-without-${command.replace('|', '-')}`
    const url = await createRestrictedUser(name, prefix, commands.filter(c => c !== command))
    await admin.call('ACL', 'LOG', 'RESET')
    await everyRedisPath(t, url, prefix)
    const denied = new Set((await aclLog()).filter(e => e.username === name).map(e => e.object))
    t.ok(denied.has(command), `without ${command}: denied ${JSON.stringify([...denied])}`)
  }
})

t.test('the service never sends CLIENT SETINFO (unknown before Redis 7.2, so never in the line)', async t => {
  // Redis counts every command it runs and every error it answers; a 7.0
  // server answers SETINFO with an error, a 7.2 one runs it. Either shows here.
  const config = loadConfig({ REDIS_URL: redis.url })
  await admin.call('CONFIG', 'RESETSTAT')
  const client = createRedisClient(config, 1000)
  await client.connect()
  t.equal(await client.ping(), 'PONG')
  await client.quit()
  const stats = await admin.info('commandstats') + await admin.info('errorstats')
  t.notMatch(stats, /setinfo/i, 'no CLIENT SETINFO was run')
  t.notMatch(stats, /errorstat_/, 'and no command of the connection was refused')
  t.match(stats, /cmdstat_ping:/, 'the connection itself was counted')
})

t.test('a prefix with glob characters grants its own keys only', async t => {
  const prefix = `sv*[${randomBytes(3).toString('hex')}]?:`
  const url = await createUserFromTheLine('session-validator-glob', prefix)
  const client = new Redis(url, { maxRetriesPerRequest: 0 })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  t.equal(await client.set(`${prefix}mine`, '1', 'PX', 1000), 'OK', 'its own keys')
  await t.rejects(client.set(`${prefix.replace('*', 'X')}other`, '1', 'PX', 1000), /NOPERM/, 'not a key the unescaped pattern would match')
})
