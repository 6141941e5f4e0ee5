import t from 'tap'
import { Redis } from 'ioredis'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, keysUnder } from '../helpers/redis.js'
import { startSentinels } from '../helpers/redis-topologies.js'
import { runDoctor } from '../../src/doctor/run.js'
import { formatText } from '../../src/doctor/report.js'

// Through Sentinel the doctor checks the master the sentinels name, as the
// service would reach it. (A Cluster: test/topologies/restricted-cluster.test.ts.)
const db = await freshDatabase(t)
const set = await startSentinels(t)
const master = new Redis({ port: set.master.port, host: '127.0.0.1', maxRetriesPerRequest: 1 })
master.on('error', () => {})
t.teardown(() => master.disconnect())
await master.config('SET', 'maxmemory', '64mb')
await master.config('SET', 'maxmemory-policy', 'allkeys-lfu')
const prefix = freshPrefix()

t.test('on Sentinel: every check passes, against the master', async t => {
  const report = await runDoctor({ DATABASE_URL: db.url, REDIS_SENTINELS: set.hosts, REDIS_SENTINEL_MASTER: 'svmaster', SESSION_CACHE_PREFIX: prefix }, { p99Ms: 50 })
  const text = formatText(report)
  t.equal(report.ok, true, text)
  t.match(text, /✔ redis reachable — connected \(master "svmaster" found through 3 sentinels\)/)
  t.match(text, /✔ redis memory — maxmemory 64\.0 MiB, policy allkeys-lfu/, 'the master\'s settings')
  t.same(await keysUnder(master, prefix), [])
})

t.test('on Sentinel with no master by that name: ✖ redis reachable', async t => {
  const report = await runDoctor({ DATABASE_URL: db.url, REDIS_SENTINELS: set.hosts, REDIS_SENTINEL_MASTER: 'nosuchmaster', SESSION_CACHE_PREFIX: prefix })
  t.equal(report.ok, false)
  t.match(formatText(report), /✖ redis reachable — no sentinel of REDIS_SENTINELS answered with a master by the name REDIS_SENTINEL_MASTER \(Error\)/)
})
