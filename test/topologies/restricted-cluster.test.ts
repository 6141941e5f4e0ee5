import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { freshDatabase } from '../helpers/postgres.js'
import { freshPrefix, keysUnder } from '../helpers/redis.js'
import { startCluster } from '../helpers/redis-topologies.js'
import { contractChecks } from '../helpers/contract.js'
import { aclSetUserLine, requiredCommands } from '../../src/redis/acl.js'
import { runDoctor } from '../../src/doctor/run.js'
import { formatText } from '../../src/doctor/report.js'

// README's restricted-user line with the Cluster additions, run on every node
// (ACL users are per node): the service keeps its contract as that user, the
// doctor checks every master, and no node denied anything.
const db = await freshDatabase(t)
const cluster = await startCluster(t)
const prefix = freshPrefix()
const password = randomBytes(16).toString('hex')
const nodes = cluster.nodes.map(n => {
  const admin = new Redis({ port: n.port, host: '127.0.0.1', maxRetriesPerRequest: 1 })
  admin.on('error', () => {})
  t.teardown(() => admin.disconnect())
  return admin
})
const [command, ...args] = aclSetUserLine(prefix, { user: 'sv-cluster', password, topology: { cluster: true, database: 0 } }).split(' ')
for (const admin of nodes) {
  await admin.call(command!, ...args)
  // a cache, as the doctor wants it
  await admin.config('SET', 'maxmemory', '64mb')
  await admin.config('SET', 'maxmemory-policy', 'allkeys-lru')
  await admin.call('ACL', 'LOG', 'RESET')
}
const env = {
  REDIS_CLUSTER_NODES: cluster.hosts,
  REDIS_USERNAME: 'sv-cluster',
  REDIS_PASSWORD: password,
  SESSION_CACHE_PREFIX: prefix,
  REDIS_TIMEOUT_MS: '300'
}

t.test('the service keeps its contract as the restricted user', async t => {
  await contractChecks(t, db, env)
})

t.test('the doctor checks every master and passes', async t => {
  const report = await runDoctor({ ...env, DATABASE_URL: db.url }, { p99Ms: 50 })
  const text = formatText(report)
  t.equal(report.ok, true, text)
  t.match(text, /✔ redis reachable — connected \(Cluster, 3 masters\)/)
  t.match(text, new RegExp(`✔ redis acl — all ${requiredCommands({ cluster: true, database: 0 }).length} commands the service sends are permitted on keys under .* on 3 masters`))
  t.notOk(text.includes(password))
})

t.test('no node denied anything, and the doctor left no key', async t => {
  for (const admin of nodes) {
    t.same(await admin.call('ACL', 'LOG'), [], `node ${admin.options.port}`)
    if ((await admin.call('ROLE') as unknown[])[0] === 'master') t.same(await keysUnder(admin, `${prefix}doctor:`), [])
  }
})
