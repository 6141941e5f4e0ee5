import t, { type Test } from 'tap'
import { freshDatabase, quietSql } from '../helpers/postgres.js'
import { startPostgresCluster } from '../helpers/postgres-cluster.js'
import { pgWireProxy, type PgWireProxy, type ResetPoint } from '../helpers/pg-wire-proxy.js'
import { freshPrefix, inspector, sharedRedisUrl } from '../helpers/redis.js'
import { createSession, createUser, type TestSession } from '../helpers/fixtures.js'
import { freePort, waitFor } from '../helpers/ports.js'
import { startServer, type ServerProcess } from '../helpers/process.js'
import { migrate } from '../../src/migrate.js'

// postgres.js 3.4.9 dropped two promises of a new connection: its startup's
// array-types query (porsager/postgres#1192) and its authentication handlers.
// A reset at that moment ended the process through an unhandled rejection;
// patches/postgres+3.4.9.patch catches them. These run the built service, as
// production does, through a proxy that resets connections at those moments.

const redisUrl = await sharedRedisUrl()

function through (url: string, port: number): string {
  const u = new URL(url)
  u.hostname = '127.0.0.1'
  u.port = String(port)
  return u.toString()
}

async function validate (base: string, token: string): Promise<number> {
  const res = await fetch(`${base}/sessions/validate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) })
  await res.arrayBuffer()
  return res.status
}

// Arms `count` resets at `point`, then keeps the service asking Postgres (a
// miss, readiness) until every one has happened; the process must live on.
async function survives (t: Test, server: ServerProcess, proxy: PgWireProxy, point: ResetPoint, count: number, base: string, uncached: () => string): Promise<void> {
  const before = proxy.resets[point]
  proxy.resetAt(point, count)
  proxy.resetOpen()
  await waitFor(`${count} resets at ${point}`, async () => {
    if (server.child.exitCode !== null) throw new Error(`the service exited ${server.child.exitCode}:\n${server.stdout()}`)
    await validate(base, uncached()).catch(() => 0)
    await fetch(`${base}/readyz`).catch(() => undefined)
    return proxy.resets[point] >= before + count
  }, 30_000, 100)
  await waitFor('Postgres to answer again', async () => (await fetch(`${base}/readyz`)).status === 200, 20_000, 100)
  t.equal(server.child.exitCode, null, `still running after ${count} connections were reset at ${point}`)
}

async function serve (t: Test, databaseUrl: string): Promise<{ server: ServerProcess, base: string }> {
  const prefix = freshPrefix()
  inspector(t, redisUrl, prefix)
  const port = await freePort()
  const server = startServer(t, {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    DATABASE_CONNECT_TIMEOUT_SECONDS: '2',
    REDIS_URL: redisUrl,
    SESSION_CACHE_PREFIX: prefix,
    LOG_LEVEL: 'warn'
  })
  const base = `http://127.0.0.1:${port}`
  await waitFor('the service to listen', async () => {
    if (server.child.exitCode !== null) throw new Error(`the service exited ${server.child.exitCode}:\n${server.stdout()}`)
    return (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200
  }, 30_000, 100)
  return { server, base }
}

async function stopsCleanly (t: Test, server: ServerProcess): Promise<void> {
  t.notMatch(server.stdout(), /shutting down after an error/)
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0, 'exits 0 on SIGTERM')
}

t.test('a new connection reset during its pg_type query costs that connection, not the process', async t => {
  const db = await freshDatabase(t)
  const userId = await createUser(db.sql)
  const session = await createSession(db.sql, userId)
  const misses: TestSession[] = await Promise.all(Array.from({ length: 20 }, () => createSession(db.sql, userId)))
  const proxy = await pgWireProxy(t, Number(new URL(db.url).port || 5432))
  // the first connections of all (pool, prober, listener) are reset at start
  proxy.resetAt('types-query', 3)
  const { server, base } = await serve(t, through(db.url, proxy.port))
  let n = 0
  const uncached = () => misses[n++ % misses.length]!.token

  await waitFor('the start-up resets', () => proxy.resets['types-query'] >= 3, 20_000)
  await waitFor('ready', async () => (await fetch(`${base}/readyz`)).status === 200, 20_000, 100)
  t.equal(server.child.exitCode, null, 'still running after its first connections were reset')
  t.equal(await validate(base, session.token), 200)

  // then at run time: every open connection dies, and so do the new ones
  await survives(t, server, proxy, 'types-query', 4, base, uncached)
  await waitFor('a valid answer', async () => await validate(base, session.token) === 200, 10_000, 100)
  t.equal(await validate(base, uncached()), 200, 'a miss reads Postgres again')
  await stopsCleanly(t, server)
})

t.test('a new connection reset during SCRAM authentication costs that connection, not the process', async t => {
  const password = 'example-scram-password'
  const cluster = await startPostgresCluster(t, { auth: 'scram-sha-256', password })
  const sql = quietSql(cluster.url, 2)
  t.teardown(() => sql.end({ timeout: 1 }))
  await migrate(sql)
  const userId = await createUser(sql)
  const session = await createSession(sql, userId)
  const misses: TestSession[] = await Promise.all(Array.from({ length: 20 }, () => createSession(sql, userId)))
  const proxy = await pgWireProxy(t, cluster.port)
  proxy.resetAt('scram-continue', 3)
  const { server, base } = await serve(t, through(cluster.url, proxy.port))
  let n = 0
  const uncached = () => misses[n++ % misses.length]!.token

  await waitFor('the start-up resets', () => proxy.resets['scram-continue'] >= 3, 20_000)
  await waitFor('ready', async () => (await fetch(`${base}/readyz`)).status === 200, 20_000, 100)
  t.equal(server.child.exitCode, null, 'still running after its first connections were reset')
  t.equal(await validate(base, session.token), 200)

  await survives(t, server, proxy, 'scram-continue', 4, base, uncached)
  await waitFor('a valid answer', async () => await validate(base, session.token) === 200, 10_000, 100)
  t.equal(await validate(base, uncached()), 200)
  await stopsCleanly(t, server)
})
