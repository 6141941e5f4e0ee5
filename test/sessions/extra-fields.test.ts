import t from 'tap'
import { buildServer } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { testApp, validate } from '../helpers/app.js'
import { createSession, createUser } from '../helpers/fixtures.js'
import { freePort, waitFor } from '../helpers/ports.js'
import { startServer } from '../helpers/process.js'

// Columns an operator adds to Studio's tables, answered with the session.
const db = await freshDatabase(t)
await db.sql.unsafe(`
  ALTER TABLE platform.user_sessions ADD COLUMN active_org_id uuid;
  ALTER TABLE platform.users ADD COLUMN plan text, ADD COLUMN seats integer, ADD COLUMN trial_ends_at timestamptz`)
const redisUrl = await sharedRedisUrl()
const prefix = freshPrefix()
inspector(t, redisUrl, prefix)
const env = { SESSION_EXTRA_FIELDS: 'active_org_id:uuid', USER_EXTRA_FIELDS: 'plan, seats:integer, trial_ends_at:timestamp' }
const a = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })).app
const b = (await testApp(t, { databaseUrl: db.url, redisUrl, prefix, env })).app
const orgs = ['0b6f7a8e-1c1d-4e2f-9a3b-4c5d6e7f8a9b', '1c7a8b9f-2d2e-4f30-8b4c-5d6e7f8a9bac']

t.test('extra fields are answered in camelCase, typed, from Postgres and from both cache tiers', async t => {
  const userId = await createUser(db.sql)
  await db.sql`UPDATE platform.users SET plan = 'team', seats = 12, trial_ends_at = '2027-01-31T00:00:00Z' WHERE id = ${userId}`
  // issued with the column set (an UPDATE would be notified, and its
  // tombstone keep Redis from caching the session for a minute)
  await db.sql.unsafe(`ALTER TABLE platform.user_sessions ALTER COLUMN active_org_id SET DEFAULT '${orgs[0]!}'`)
  const s = await createSession(db.sql, userId)
  await db.sql.unsafe('ALTER TABLE platform.user_sessions ALTER COLUMN active_org_id DROP DEFAULT')
  const answers = [await validate(a, s.token), await validate(a, s.token), await validate(b, s.token)]
  t.same(answers.map(r => r.headers['x-session-cache-tier'] ?? r.headers['x-session-cache']), ['miss', 'local', 'redis'])
  for (const res of answers) {
    const body = res.json()
    t.equal(body.session.activeOrgId, orgs[0])
    t.same([body.user.plan, body.user.seats, body.user.trialEndsAt], ['team', 12, '2027-01-31T00:00:00.000Z'])
  }
  const nulls = await createSession(db.sql, await createUser(db.sql))
  const body = (await validate(a, nulls.token)).json()
  t.same([body.session.activeOrgId, body.user.plan, body.user.seats, body.user.trialEndsAt], [null, null, null, null], 'absent values are null')
})

t.test('changing active_org_id (or a user field) in Postgres is seen by every instance within a second', async t => {
  const userId = await createUser(db.sql)
  const s = await createSession(db.sql, userId)
  await db.sql`UPDATE platform.user_sessions SET active_org_id = ${orgs[0]!} WHERE id = ${s.id}`
  // the UPDATE's notification may land after a first fill and rightly forget it
  for (const app of [a, b]) await waitFor('a cached copy', async () => (await validate(app, s.token)).headers['x-session-cache'] === 'hit', 3000, 20)
  await db.sql`UPDATE platform.user_sessions SET active_org_id = ${orgs[1]!} WHERE id = ${s.id}`
  const start = Date.now()
  await waitFor('the new organisation everywhere', async () =>
    (await validate(a, s.token)).json().session.activeOrgId === orgs[1] && (await validate(b, s.token)).json().session.activeOrgId === orgs[1], 1000, 10)
  t.ok(Date.now() - start < 1000, `switched on both within ${Date.now() - start} ms`)
  await db.sql`UPDATE platform.users SET seats = 99 WHERE id = ${userId}`
  await waitFor('the new seat count everywhere', async () =>
    (await validate(a, s.token)).json().user.seats === 99 && (await validate(b, s.token)).json().user.seats === 99, 1000, 10)
  t.pass('a user field too')
})

t.test('the OpenAPI document types them', async t => {
  const doc = (await a.inject({ method: 'GET', url: '/docs/json' })).json()
  const ok = doc.paths['/sessions/validate'].post.responses['200'].content['application/json'].schema.properties
  t.match(ok.session.properties.activeOrgId, { type: ['string', 'null'], format: 'uuid' })
  t.match(ok.user.properties.seats, { type: ['integer', 'null'] })
  t.match(ok.user.properties.trialEndsAt, { type: ['string', 'null'], format: 'date-time' })
  t.ok(ok.user.required.includes('plan'))
})

t.test('a column that does not exist, or of another type, stops the start with one line', async t => {
  for (const [extra, message] of [
    [{ SESSION_EXTRA_FIELDS: 'org_id' }, /^SESSION_EXTRA_FIELDS: platform.user_sessions has no column org_id$/],
    [{ USER_EXTRA_FIELDS: 'seats:uuid' }, /^USER_EXTRA_FIELDS: platform.users.seats is int4, not uuid$/]
  ] as const) {
    const config = loadConfig({ DATABASE_URL: db.url, ...extra })
    const app = await buildServer({ config, databaseUrl: db.url }, { logger: false })
    await t.rejects(async () => { await app.ready() }, message)
    await app.close()
  }
  const server = startServer(t, { PORT: String(await freePort()), HOST: '127.0.0.1', DATABASE_URL: db.url, SESSION_EXTRA_FIELDS: 'org_id', LOG_LEVEL: 'fatal' })
  t.equal(await server.exited, 1)
  t.same(server.stderr().trim().split('\n'), ['invalid configuration: SESSION_EXTRA_FIELDS: platform.user_sessions has no column org_id'])
})

t.test('what may be named is checked like every other variable', async t => {
  for (const [name, value] of [['SESSION_EXTRA_FIELDS', 'token'], ['SESSION_EXTRA_FIELDS', 'expires_at'], ['USER_EXTRA_FIELDS', 'email'],
    ['SESSION_EXTRA_FIELDS', 'Active-Org'], ['SESSION_EXTRA_FIELDS', 'a:float'], ['USER_EXTRA_FIELDS', 'plan,plan'], ['SESSION_EXTRA_FIELDS', 'x;drop']] as const) {
    t.throws(() => loadConfig({ [name]: value }), { name: 'ConfigError', variable: name }, `${name}=${value} is refused`)
  }
})
