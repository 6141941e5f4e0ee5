// Everything the soak runs, on loopback and free ports, each undone at the
// end (also on error and Ctrl-C): a Postgres cluster of its own (so that it
// can be restarted), a redis-server of its own, three instances of the built
// service each behind a fault proxy to each, and Prometheus scraping them
// with the shipped rules.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import postgres from 'postgres'
import { Redis } from 'ioredis'
import { stringify } from 'yaml'
import { onCleanup } from '../bench/cleanup.ts'
import { buildRoot } from '../bench/dist.ts'
import { alertNames, loadRules, shortenRules } from '../test/helpers/alert-rules.ts'
import { faultProxy } from '../test/helpers/fault-proxy.ts'
import { startPostgresCluster, type PostgresCluster } from '../test/helpers/postgres-cluster.ts'
import { startPrometheus, type Prometheus } from '../test/helpers/prometheus.ts'
import { waitFor } from '../test/helpers/ports.ts'
import { ownRedis, type OwnRedis } from '../test/helpers/redis.ts'
import { EXPECTED } from './expectations.ts'
import { createInstance, type Instance } from './instance.ts'

const run = promisify(execFile)

export const DATABASE = 'soak'
export const JOB = 'session-validator'
export const INSTANCES = ['a', 'b', 'c']
/** the soak's own connections, left out when counting the service's */
export const OWN_NAME = 'soak'

export interface Stack {
  cluster: PostgresCluster
  /** the soak's own connection, straight to the cluster */
  sql: postgres.Sql
  redis: OwnRedis
  /** the soak's own connection, straight to redis-server */
  redisClient: Redis
  instances: Instance[]
  prometheus: Prometheus
  intervalSeconds: number
}

/** The tap-style teardown the test helpers take, onto the soak's cleanup stack. */
export const teardown = (name: string) => ({ teardown: (fn: () => unknown) => { onCleanup(name, fn) } })

// The service as deployed, defaults untouched, whatever the time scale: what
// it does at its own pace (its breaker's window and half-open delay, its
// heartbeat, its rate-limit window) is what production sees.
export const SERVICE_ENV: Record<string, string> = {
  // info: events only (no line per request), what the soak's logs are read for
  LOG_LEVEL: 'info',
  // the soak is the end users' backend: its X-Real-IP names them
  TRUSTED_PROXIES: '127.0.0.1'
}

export interface StackOptions {
  timeScale: number
  intervalSeconds: number
  logDir: string
  now: () => number
  log: (line: string) => void
}

export async function startStack (o: StackOptions): Promise<Stack> {
  const rules = loadRules()
  const missing = [...new Set(Object.values(EXPECTED).flat().map(e => e.alert))].filter(a => !alertNames(rules).includes(a))
  if (missing.length > 0) throw new Error(`soak/expectations.ts names alerts that deploy/prometheus/alerts.yml does not have: ${missing.join(', ')}`)

  const cluster = await startPostgresCluster(teardown('postgres cluster'))
  const admin = postgres(cluster.url, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE ${DATABASE}`)
  await admin.end()
  const databaseUrl = `postgres://postgres@127.0.0.1:${cluster.port}/${DATABASE}`
  await run(process.execPath, [`${buildRoot()}/dist/migrate-cli.js`], { env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl } })
  // backoff: the driver's own waits up to 20 s after a Postgres restart, and
  // the stall probe (stalls.ts) would take its slow SELECT 1 for the machine's
  const sql = postgres(databaseUrl, { max: 4, onnotice: () => {}, connect_timeout: 5, backoff: () => 0.1, connection: { application_name: OWN_NAME } })
  onCleanup('soak postgres connection', () => sql.end({ timeout: 1 }))
  o.log(`postgres cluster on port ${cluster.port}, database ${DATABASE} migrated`)

  const redis = await ownRedis(teardown('redis-server'))
  const redisClient = new Redis({ port: redis.port, host: '127.0.0.1', connectionName: OWN_NAME, maxRetriesPerRequest: 1, enableOfflineQueue: false })
  redisClient.on('error', () => {}) // down on purpose during Redis faults
  onCleanup('soak redis connection', () => redisClient.disconnect())
  o.log(`redis-server on port ${redis.port}`)

  const instances: Instance[] = []
  for (const name of INSTANCES) {
    const pg = await faultProxy(teardown(`postgres proxy ${name}`), cluster.port)
    const cache = await faultProxy(teardown(`redis proxy ${name}`), redis.port)
    instances.push(await createInstance({
      name,
      env: { ...SERVICE_ENV, DATABASE_URL: `postgres://postgres@127.0.0.1:${pg.port}/${DATABASE}`, REDIS_URL: `redis://127.0.0.1:${cache.port}` },
      postgres: pg,
      redis: cache,
      logDir: o.logDir,
      now: o.now,
      log: o.log
    }))
  }
  await Promise.all(instances.map(i => i.start()))
  o.log(`instances ${instances.map(i => `${i.name} on ${i.port}`).join(', ')}`)

  const scaled = shortenRules(rules, { windowsBy: o.timeScale, forBy: o.timeScale, minWindowSeconds: 0 })
  const prometheus = await startPrometheus(teardown('prometheus'), {
    jobs: [{ name: JOB, targets: instances.map(i => i.target) }],
    rules: stringify(scaled),
    intervalSeconds: o.intervalSeconds
  })
  // no alert judged before Prometheus has seen every instance up once
  await waitFor('prometheus to scrape every instance', async () => (await prometheus.query(`up{job="${JOB}"} == 1`).catch(() => [])).length === instances.length, 60_000, 250)
  o.log(`prometheus at ${prometheus.url}, rules ${o.timeScale === 1 ? 'as shipped' : `with time divided by ${o.timeScale}`}, scraping and evaluating every ${o.intervalSeconds} s`)
  return { cluster, sql, redis, redisClient, instances, prometheus, intervalSeconds: o.intervalSeconds }
}
